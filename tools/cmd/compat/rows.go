package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/NYTimes/gziphandler"
	"github.com/didip/tollbooth/v7"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/felixge/httpsnoop"
	chimw "github.com/go-chi/chi/v5/middleware"
	chicors "github.com/go-chi/cors"
	"github.com/go-chi/httplog/v3"
	"github.com/go-chi/httprate"
	"github.com/gorilla/csrf"
	"github.com/gorilla/handlers"
	"github.com/justinas/alice"
	"github.com/justinas/nosurf"
	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	rscors "github.com/rs/cors"
	slogchi "github.com/samber/slog-chi"
	metricsprom "github.com/slok/go-http-metrics/metrics/prometheus"
	httpmetrics "github.com/slok/go-http-metrics/middleware"
	httpmetricsstd "github.com/slok/go-http-metrics/middleware/std"
	"github.com/ulule/limiter/v3"
	limiterstd "github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	limitermem "github.com/ulule/limiter/v3/drivers/store/memory"
	"github.com/unrolled/secure"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Module paths for the version lookup in the build information.
const (
	modChi       = "github.com/go-chi/chi/v5"
	modChiCORS   = "github.com/go-chi/cors"
	modHTTPLog   = "github.com/go-chi/httplog/v3"
	modGorilla   = "github.com/gorilla/handlers"
	modGzhttp    = "github.com/klauspost/compress"
	modPrometh   = "github.com/prometheus/client_golang"
	modRSCORS    = "github.com/rs/cors"
	modOtelHTTP  = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	modHTTPSnoop = "github.com/felixge/httpsnoop"
	modGzipHdlr  = "github.com/NYTimes/gziphandler"
	modHTTPMetr  = "github.com/slok/go-http-metrics"
	modSlogChi   = "github.com/samber/slog-chi"
	modAlice     = "github.com/justinas/alice"
	modSecure    = "github.com/unrolled/secure"
	modHTTPRate  = "github.com/go-chi/httprate"
	modTollbooth = "github.com/didip/tollbooth/v7"
	modLimiter   = "github.com/ulule/limiter/v3"
	modCSRF      = "github.com/gorilla/csrf"
	modNosurf    = "github.com/justinas/nosurf"
	// modStd marks the standard library: its version is the Go version in
	// the header, so the table does not repeat it.
	modStd = "std"
	// modSelf marks code in this command.
	modSelf = ""
)

// octetStream is the content type the file is served with unless a row says
// otherwise: a download.
const octetStream = "application/octet-stream"

// origin is the Origin header the CORS rows send.
const origin = "https://app.example.com"

// row is one line of the matrix: a middleware in one configuration.
type row struct {
	// id names the row for the child processes of the tests.
	id string
	// name is the middleware and its configuration, as Markdown.
	name string
	// module is the module path to look the version up under in the build
	// information; modStd for the standard library, modSelf for this command.
	module string
	// contentType is the Content-Type the handler serves the file with;
	// empty means application/octet-stream.
	contentType string
	// origin makes the client send an Origin header, as browsers do for
	// cross-origin requests.
	origin bool
	// noAcceptEncoding makes the client send no Accept-Encoding header, as
	// curl does by default.
	noAcceptEncoding bool
	// prefix is put before /files/ in the path the client asks for, for a
	// middleware that strips it.
	prefix string
	// netHTTP serves the file with net/http's http.ServeContent instead of
	// fastpath's handlers.ServeContent: a handler fastpath knows nothing of.
	netHTTP bool
	// new returns a fresh instance of the middleware, so that what it
	// reports is about the requests of one server only.
	new func() instance
}

// instance is one middleware, ready to mount, and how to read the response
// size it reported itself.
type instance struct {
	// mw is the middleware.
	mw func(http.Handler) http.Handler
	// reported returns the response body size the middleware reported for
	// the last request it served (from its log line, metric or return
	// value); nil when the middleware reports no size.
	reported func() (int64, error)
}

// served returns the row's content type.
func (r *row) served() string {
	if r.contentType == "" {
		return octetStream
	}
	return r.contentType
}

// plain makes the constructor of a middleware that reports nothing.
func plain(mk func() func(http.Handler) http.Handler) func() instance {
	return func() instance { return instance{mw: mk()} }
}

// rows is the matrix, in the order of the table.
var rows = []*row{
	{
		id:     "control",
		name:   "control: naive byte-counting wrapper (struct embedding `http.ResponseWriter`, counting in `Write`)",
		module: modSelf,
		new:    countingWrapper,
	},
	{
		id:      "control-net-http",
		name:    "control: the same wrapper, file served by net/http's `http.ServeContent` (a handler fastpath does not know)",
		module:  modSelf,
		netHTTP: true,
		new:     countingWrapper,
	},

	// go-chi/chi/v5 middleware.
	{
		id:     "chi-logger",
		name:   "chi `middleware.Logger` (its `DefaultLogFormatter`, to a buffer)",
		module: modChi,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			mw := chimw.RequestLogger(&chimw.DefaultLogFormatter{Logger: log.New(buf, "", log.LstdFlags), NoColor: true})
			return instance{mw: mw, reported: sizeFromText(buf, chiLogSize)}
		},
	},
	{id: "chi-recoverer", name: "chi `middleware.Recoverer`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.Recoverer })},
	{id: "chi-requestid", name: "chi `middleware.RequestID`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.RequestID })},
	{id: "chi-realip", name: "chi `middleware.RealIP`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.RealIP })},
	{id: "chi-timeout", name: "chi `middleware.Timeout(60s)`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.Timeout(time.Minute) })},
	{id: "chi-throttle", name: "chi `middleware.Throttle(100)`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.Throttle(100) })},
	{id: "chi-compress", name: "chi `middleware.Compress(5)`, default types (file is `application/octet-stream`, not among them)", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.Compress(5) })},
	{id: "chi-compress-csv", name: "chi `middleware.Compress(5)`, default types, file served as `text/csv`", module: modChi,
		contentType: "text/csv",
		new:         plain(func() func(http.Handler) http.Handler { return chimw.Compress(5) })},
	{id: "chi-compress-maybe", name: "chi `middleware.Maybe(Compress(5), not under /files/)`, file served as `text/csv`", module: modChi,
		contentType: "text/csv",
		new: plain(func() func(http.Handler) http.Handler {
			return chimw.Maybe(chimw.Compress(5), func(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/files/") })
		})},
	{id: "chi-nocache", name: "chi `middleware.NoCache`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.NoCache })},
	{id: "chi-stripslashes", name: "chi `middleware.StripSlashes`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.StripSlashes })},
	{id: "chi-cleanpath", name: "chi `middleware.CleanPath`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.CleanPath })},
	{id: "chi-gethead", name: "chi `middleware.GetHead`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.GetHead })},
	{
		id:     "chi-wrapwriter",
		name:   "chi `middleware.NewWrapResponseWriter`, used directly (`BytesWritten`)",
		module: modChi,
		new: func() instance {
			var n atomic.Int64
			mw := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
					next.ServeHTTP(ww, r)
					n.Store(int64(ww.BytesWritten()))
				})
			}
			return instance{mw: mw, reported: func() (int64, error) { return n.Load(), nil }}
		},
	},

	// gorilla/handlers.
	{
		id:     "gorilla-logging",
		name:   "gorilla `handlers.LoggingHandler`",
		module: modGorilla,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			mw := func(next http.Handler) http.Handler { return handlers.LoggingHandler(buf, next) }
			return instance{mw: mw, reported: sizeFromText(buf, apacheLogSize)}
		},
	},
	{
		id:     "gorilla-combined",
		name:   "gorilla `handlers.CombinedLoggingHandler`",
		module: modGorilla,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			mw := func(next http.Handler) http.Handler { return handlers.CombinedLoggingHandler(buf, next) }
			return instance{mw: mw, reported: sizeFromText(buf, apacheLogSize)}
		},
	},
	{id: "gorilla-compress", name: "gorilla `handlers.CompressHandler`", module: modGorilla,
		new: plain(func() func(http.Handler) http.Handler { return handlers.CompressHandler })},
	{id: "gorilla-recovery", name: "gorilla `handlers.RecoveryHandler()`", module: modGorilla,
		new: plain(func() func(http.Handler) http.Handler { return handlers.RecoveryHandler() })},
	{id: "gorilla-proxyheaders", name: "gorilla `handlers.ProxyHeaders`", module: modGorilla,
		new: plain(func() func(http.Handler) http.Handler { return handlers.ProxyHeaders })},
	{id: "gorilla-cors", name: "gorilla `handlers.CORS(AllowedOrigins(…))`, with an Origin", module: modGorilla,
		origin: true,
		new: plain(func() func(http.Handler) http.Handler {
			return handlers.CORS(handlers.AllowedOrigins([]string{origin}))
		})},

	// OpenTelemetry.
	{
		id:     "otelhttp",
		name:   "otelhttp `NewMiddleware` (metric `http.server.response.body.size`)",
		module: modOtelHTTP,
		new: func() instance {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			mw := otelhttp.NewMiddleware("download", otelhttp.WithMeterProvider(mp))
			return instance{mw: mw, reported: func() (int64, error) { return otelBodySize(reader) }}
		},
	},

	// Prometheus.
	{
		id:     "prom-counter",
		name:   "promhttp `InstrumentHandlerCounter` (labels code, method)",
		module: modPrometh,
		new: func() instance {
			c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests."}, []string{"code", "method"})
			prometheus.NewRegistry().MustRegister(c)
			return instance{mw: func(next http.Handler) http.Handler { return promhttp.InstrumentHandlerCounter(c, next) }}
		},
	},
	{
		id:     "prom-duration",
		name:   "promhttp `InstrumentHandlerDuration` (labels code, method)",
		module: modPrometh,
		new: func() instance {
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "Latency.", Buckets: prometheus.DefBuckets}, []string{"code", "method"})
			prometheus.NewRegistry().MustRegister(h)
			return instance{mw: func(next http.Handler) http.Handler { return promhttp.InstrumentHandlerDuration(h, next) }}
		},
	},
	{
		id:     "prom-size",
		name:   "promhttp `InstrumentHandlerResponseSize` (labels code, method)",
		module: modPrometh,
		new: func() instance {
			reg := prometheus.NewRegistry()
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_response_size_bytes", Help: "Sizes.", Buckets: prometheus.ExponentialBuckets(100, 10, 8)}, []string{"code", "method"})
			reg.MustRegister(h)
			return instance{
				mw:       func(next http.Handler) http.Handler { return promhttp.InstrumentHandlerResponseSize(h, next) },
				reported: func() (int64, error) { return promHistogramSum(reg, "http_response_size_bytes") },
			}
		},
	},

	// CORS.
	{id: "rs-cors", name: "rs/cors `cors.Default().Handler`, with an Origin", module: modRSCORS,
		origin: true,
		new:    plain(func() func(http.Handler) http.Handler { return rscors.Default().Handler })},
	{id: "chi-cors", name: "go-chi/cors `cors.Handler(AllowedOrigins: https://*, http://*)`, with an Origin", module: modChiCORS,
		origin: true,
		new: plain(func() func(http.Handler) http.Handler {
			return chicors.Handler(chicors.Options{AllowedOrigins: []string{"https://*", "http://*"}, AllowedMethods: []string{"GET", "HEAD"}})
		})},

	// klauspost/compress gzhttp.
	{id: "gzhttp", name: "gzhttp `GzipHandler` (defaults)", module: modGzhttp,
		new: plain(func() func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler { return gzhttp.GzipHandler(next) }
		})},
	{id: "gzhttp-except", name: "gzhttp `NewWrapper(ExceptContentTypes(application/octet-stream))`", module: modGzhttp,
		new: plain(func() func(http.Handler) http.Handler {
			wrap, err := gzhttp.NewWrapper(gzhttp.ExceptContentTypes([]string{octetStream}))
			if err != nil {
				panic(err)
			}
			return func(next http.Handler) http.Handler { return wrap(next) }
		})},
	{id: "gzhttp-identity", name: "gzhttp `GzipHandler` (defaults), client sends no Accept-Encoding", module: modGzhttp,
		noAcceptEncoding: true,
		new: plain(func() func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler { return gzhttp.GzipHandler(next) }
		})},

	// felixge/httpsnoop.
	{
		id:     "httpsnoop",
		name:   "httpsnoop `CaptureMetrics` (`Metrics.Written`)",
		module: modHTTPSnoop,
		new: func() instance {
			var n atomic.Int64
			mw := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					m := httpsnoop.CaptureMetrics(next, w, r)
					n.Store(m.Written)
				})
			}
			return instance{mw: mw, reported: func() (int64, error) { return n.Load(), nil }}
		},
	},

	// go-chi/httplog.
	{
		id:     "httplog",
		name:   "httplog `RequestLogger` (ECS schema, response body logging off)",
		module: modHTTPLog,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			logger := slog.New(slog.NewJSONHandler(buf, nil))
			mw := httplog.RequestLogger(logger, &httplog.Options{Level: slog.LevelInfo, Schema: httplog.SchemaECS, RecoverPanics: true})
			return instance{mw: mw, reported: sizeFromJSON(buf, httplog.SchemaECS.ResponseBytes)}
		},
	},
	{
		id:     "httplog-body",
		name:   "httplog `RequestLogger` (ECS schema, `LogResponseBody` on)",
		module: modHTTPLog,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			logger := slog.New(slog.NewJSONHandler(buf, nil))
			mw := httplog.RequestLogger(logger, &httplog.Options{
				Level: slog.LevelInfo, Schema: httplog.SchemaECS, RecoverPanics: true,
				LogResponseBody: func(*http.Request) bool { return true },
			})
			return instance{mw: mw, reported: sizeFromJSON(buf, httplog.SchemaECS.ResponseBytes)}
		},
	},

	// The standard library.
	{id: "std-timeouthandler", name: "net/http `http.TimeoutHandler(60s)`", module: modStd,
		new: plain(func() func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler { return http.TimeoutHandler(next, time.Minute, "timeout") }
		})},
	{id: "std-maxbytes", name: "net/http `http.MaxBytesHandler(1 MiB)`", module: modStd,
		new: plain(func() func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler { return http.MaxBytesHandler(next, 1<<20) }
		})},
	{id: "std-stripprefix", name: "net/http `http.StripPrefix(/static)`, client asks for `/static/files/…`", module: modStd,
		prefix: "/static",
		new: plain(func() func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler { return http.StripPrefix("/static", next) }
		})},

	// More of chi's middleware.
	{id: "chi-heartbeat", name: "chi `middleware.Heartbeat(/ping)`", module: modChi,
		new: plain(func() func(http.Handler) http.Handler { return chimw.Heartbeat("/ping") })},

	// NYTimes/gziphandler.
	{id: "gziphandler", name: "NYTimes/gziphandler `GzipHandler` (defaults)", module: modGzipHdlr,
		new: plain(func() func(http.Handler) http.Handler { return gziphandler.GzipHandler })},

	// slok/go-http-metrics.
	{
		id:     "go-http-metrics",
		name:   "slok/go-http-metrics `std.HandlerProvider` with its Prometheus recorder (`http_response_size_bytes`)",
		module: modHTTPMetr,
		new: func() instance {
			reg := prometheus.NewRegistry()
			m := httpmetrics.New(httpmetrics.Config{Recorder: metricsprom.NewRecorder(metricsprom.Config{Registry: reg})})
			return instance{
				mw:       httpmetricsstd.HandlerProvider("", m),
				reported: func() (int64, error) { return promHistogramSum(reg, "http_response_size_bytes") },
			}
		},
	},

	// samber/slog-chi.
	{
		id:     "slog-chi",
		name:   "samber/slog-chi `New` (defaults)",
		module: modSlogChi,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			mw := slogchi.New(slog.New(slog.NewJSONHandler(buf, nil)))
			return instance{mw: mw, reported: sizeFromJSON(buf, "response", "length")}
		},
	},
	{
		id:     "slog-chi-body",
		name:   "samber/slog-chi `NewWithConfig` (`WithResponseBody` on)",
		module: modSlogChi,
		new: func() instance {
			buf := new(testutil.LockedBuffer)
			mw := slogchi.NewWithConfig(slog.New(slog.NewJSONHandler(buf, nil)), slogchi.Config{
				DefaultLevel: slog.LevelInfo, ClientErrorLevel: slog.LevelWarn, ServerErrorLevel: slog.LevelError,
				WithRequestID: true, WithResponseBody: true,
			})
			return instance{mw: mw, reported: sizeFromJSON(buf, "response", "length")}
		},
	},

	// justinas/alice.
	{id: "alice", name: "justinas/alice chain of chi `RequestID`, `RealIP` and `NoCache`", module: modAlice,
		new: plain(func() func(http.Handler) http.Handler {
			chain := alice.New(chimw.RequestID, chimw.RealIP, chimw.NoCache)
			return chain.Then
		})},

	// unrolled/secure.
	{id: "secure", name: "unrolled/secure `New(FrameDeny, ContentTypeNosniff, STSSeconds)`", module: modSecure,
		new: plain(func() func(http.Handler) http.Handler {
			return secure.New(secure.Options{FrameDeny: true, ContentTypeNosniff: true, STSSeconds: 31536000, IsDevelopment: false}).Handler
		})},

	// Rate limiters.
	{id: "httprate", name: "go-chi/httprate `LimitBy(100, 1m, Key(\"*\"))`", module: modHTTPRate,
		new: plain(func() func(http.Handler) http.Handler {
			return httprate.LimitBy(100, time.Minute, httprate.Key("*"))
		})},
	{id: "tollbooth", name: "tollbooth `LimitHandler(NewLimiter(100/s))`", module: modTollbooth,
		new: plain(func() func(http.Handler) http.Handler {
			lmt := tollbooth.NewLimiter(100, nil)
			return func(next http.Handler) http.Handler { return tollbooth.LimitHandler(lmt, next) }
		})},
	{id: "ulule-limiter", name: "ulule/limiter `stdlib.NewMiddleware` (100/min, memory store)", module: modLimiter,
		new: plain(func() func(http.Handler) http.Handler {
			lim := limiter.New(limitermem.NewStore(), limiter.Rate{Period: time.Minute, Limit: 100})
			return limiterstd.NewMiddleware(lim).Handler
		})},

	// CSRF protection (a download is a GET: checked for nothing, but
	// given the token cookie).
	{id: "gorilla-csrf", name: "gorilla/csrf `Protect(key, Secure(false))`", module: modCSRF,
		new: plain(func() func(http.Handler) http.Handler {
			return csrf.Protect([]byte("0123456789abcdef0123456789abcdef"), csrf.Secure(false))
		})},
	{id: "nosurf", name: "justinas/nosurf `New`", module: modNosurf,
		new: plain(func() func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler { return nosurf.New(next) }
		})},
}

// countingWrapper is the control: a wrapper that embeds http.ResponseWriter
// to count the bytes written, and so hides io.ReaderFrom.
func countingWrapper() instance {
	var n atomic.Int64
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cw := &testutil.CountingWriter{ResponseWriter: w}
			next.ServeHTTP(cw, r)
			n.Store(cw.N)
		})
	}
	return instance{mw: mw, reported: func() (int64, error) { return n.Load(), nil }}
}

// rowByID returns the row with the given id, or nil.
func rowByID(id string) *row {
	for _, r := range rows {
		if r.id == id {
			return r
		}
	}
	return nil
}

var (
	// chiLogSize matches chi's DefaultLogFormatter line:
	// "GET http://host/path HTTP/1.1" from 127.0.0.1:1234 - 200 67108864B in 35ms
	chiLogSize = regexp.MustCompile(` - (\d{3}) (\d+)B in `)
	// apacheLogSize matches the status and size of an Apache common or
	// combined log line: ... "GET /path HTTP/1.1" 200 67108864 ...
	apacheLogSize = regexp.MustCompile(`" (\d{3}) (\d+)`)
)

// sizeFromText returns a reporter that reads the size (the second group of
// re) from the one log line in buf.
func sizeFromText(buf *testutil.LockedBuffer, re *regexp.Regexp) func() (int64, error) {
	return func() (int64, error) {
		out := strings.TrimSpace(buf.String())
		lines := strings.Split(out, "\n")
		if out == "" || len(lines) != 1 {
			return 0, fmt.Errorf("want one log line, got %d: %q", len(lines), out)
		}
		m := re.FindStringSubmatch(lines[0])
		if m == nil {
			return 0, fmt.Errorf("no size in log line %q", lines[0])
		}
		return strconv.ParseInt(m[2], 10, 64)
	}
}

// sizeFromJSON returns a reporter that reads the number at path (a key, or
// a group's keys down to it) from the one JSON log record in buf.
func sizeFromJSON(buf *testutil.LockedBuffer, path ...string) func() (int64, error) {
	return func() (int64, error) {
		out := strings.TrimSpace(buf.String())
		lines := strings.Split(out, "\n")
		if out == "" || len(lines) != 1 {
			return 0, fmt.Errorf("want one log record, got %d: %q", len(lines), out)
		}
		var rec map[string]any
		d := json.NewDecoder(strings.NewReader(lines[0]))
		d.UseNumber()
		if err := d.Decode(&rec); err != nil {
			return 0, fmt.Errorf("log record %q: %w", lines[0], err)
		}
		var v any = rec
		for _, key := range path {
			group, ok := v.(map[string]any)
			if !ok {
				return 0, fmt.Errorf("no %s in log record %q", strings.Join(path, "."), lines[0])
			}
			v = group[key]
		}
		n, ok := v.(json.Number)
		if !ok {
			return 0, fmt.Errorf("no number at %s in log record %q", strings.Join(path, "."), lines[0])
		}
		return n.Int64()
	}
}

// otelBodySize sums the http.server.response.body.size histogram otelhttp
// recorded.
func otelBodySize(reader *sdkmetric.ManualReader) (int64, error) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		return 0, err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "http.server.response.body.size" {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[int64])
			if !ok {
				return 0, fmt.Errorf("%s is a %T", m.Name, m.Data)
			}
			var sum int64
			var count uint64
			for _, dp := range h.DataPoints {
				sum += dp.Sum
				count += dp.Count
			}
			if count != 1 {
				return 0, fmt.Errorf("%s has %d observations, want 1", m.Name, count)
			}
			return sum, nil
		}
	}
	return 0, errors.New("otelhttp recorded no http.server.response.body.size")
}

// promHistogramSum returns the sum of the one observation of a histogram.
func promHistogramSum(reg *prometheus.Registry, name string) (int64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		var count uint64
		for _, m := range mf.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			count += m.GetHistogram().GetSampleCount()
		}
		if count != 1 {
			return 0, fmt.Errorf("%s has %d observations, want 1", name, count)
		}
		return int64(sum), nil
	}
	return 0, fmt.Errorf("no %s in the registry", name)
}
