package middleware_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/middleware"
)

// A JSON request log from a chi router. The time and duration are removed
// here only to make the output reproducible.
func ExampleLogger() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration_ms", "ttfb_ms", "client.address":
				return slog.Attr{}
			}
			return a
		},
	}))

	r := chi.NewRouter()
	r.Use(middleware.Logger(logger))
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, "+chi.URLParam(r, "name"))
	})

	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/hello/gopher")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Close() // waits for the request, and so for its log record
	fmt.Println(string(body))
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"GET","url.path":"/hello/gopher","http.route":"/hello/{name}","http.response.status_code":200,"http.response.body.size":13,"user_agent.original":"Go-http-client/1.1","network.protocol.version":"1.1"}
	// hello, gopher
}

// Metrics with an OpenTelemetry SDK meter provider: the response body size of
// a file served by http.ServeContent is counted, which otelhttp reports as 0.
func ExampleMetrics() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	content := strings.Repeat("fastpath", 1000) // 8000 bytes
	r := chi.NewRouter()
	r.Use(middleware.Metrics(middleware.WithMeterProvider(mp)))
	r.Get("/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, chi.URLParam(r, "name"), time.Time{}, strings.NewReader(content))
	})
	srv := httptest.NewServer(r)
	resp, err := http.Get(srv.URL + "/files/a.txt")
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv.Close()

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if h, ok := m.Data.(metricdata.Histogram[int64]); ok && m.Name == "http.server.response.body.size" {
			dp := h.DataPoints[0]
			route, _ := dp.Attributes.Value("http.route")
			fmt.Println(m.Name, m.Unit, route.AsString(), dp.Sum)
		}
	}
	// Output:
	// http.server.response.body.size By /files/{name} 8000
}

// Tracing with an OpenTelemetry SDK tracer provider: the span is renamed once
// chi has found the route.
func ExampleTracing() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())

	r := chi.NewRouter()
	r.Use(middleware.Tracing(middleware.WithTracerProvider(tp)))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	srv := httptest.NewServer(r)
	resp, err := http.Get(srv.URL + "/users/42")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	srv.Close()

	s := spans.GetSpans()[0]
	fmt.Println(s.Name, s.SpanKind)
	for _, kv := range s.Attributes {
		switch kv.Key {
		case "http.route", "http.response.status_code", "http.response.body.size":
			fmt.Println(kv.Key, kv.Value.Emit())
		}
	}
	// Output:
	// GET /users/{id} server
	// http.response.status_code 200
	// http.route /users/{id}
	// http.response.body.size 5
}

// Listener lets fastpath report how many response bytes the kernel sent with
// sendfile(2): all but the first 512, which net/http writes itself.
func ExampleListener() {
	f, err := os.CreateTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	f.Write(make([]byte, 1<<20))
	f.Close()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case "http.response.body.size", "fastpath.response.sendfile.size":
				return a
			}
			return slog.Attr{}
		},
	}))
	h := middleware.Logger(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, f.Name())
	}))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(middleware.Listener(ln))
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv.Shutdown(context.Background()) // waits for the request, and so for its log record
	// Output:
	// http.response.body.size=1048576 fastpath.response.sendfile.size=1048064
}

// patternKey is where exampleRouter puts the pattern it matched.
type patternKey struct{}

// WithRoute for a router that chi and ServeMux detection do not know: this
// one, like gorilla/mux, hands its handlers the matched pattern in the
// request context, so the middleware is mounted inside it, per route.
func ExampleWithRoute() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration_ms", "ttfb_ms", "client.address":
				return slog.Attr{}
			}
			return a
		},
	}))
	logged := middleware.Logger(logger, middleware.WithRoute(func(r *http.Request) string {
		pattern, _ := r.Context().Value(patternKey{}).(string)
		return pattern
	}))
	users := logged(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a user")
	}))
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/users/") {
			users.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), patternKey{}, "/users/{id}")))
			return
		}
		http.NotFound(w, r)
	})
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"GET","url.path":"/users/42","http.route":"/users/{id}","http.response.status_code":200,"http.response.body.size":6,"network.protocol.version":"1.1"}
}

// tierKey is where the example's handler tells the middleware the tier.
type tierKey struct{}

// WithAttributes: the handler decides a value while it serves, and the hook
// adds it to the log record once the handler has returned. The same option
// given to Metrics adds it to every measurement, so it must come from a small
// fixed set; a tier does.
func ExampleWithAttributes() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration_ms", "ttfb_ms", "client.address":
				return slog.Attr{}
			}
			return a
		},
	}))
	tier := middleware.WithAttributes(func(r *http.Request) []attribute.KeyValue {
		if t, ok := r.Context().Value(tierKey{}).(*string); ok && *t != "" {
			return []attribute.KeyValue{attribute.String("app.tier", *t)}
		}
		return nil
	})
	h := middleware.Logger(logger, tier)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*r.Context().Value(tierKey{}).(*string) = "gold" // known once the handler has looked the customer up
		w.WriteHeader(http.StatusNoContent)
	}))
	// A middleware in front gives each request a place for the tier.
	withTier := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tierKey{}, new(string))))
	})
	withTier.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/orders/7", nil))
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"DELETE","url.path":"/orders/7","http.response.status_code":204,"http.response.body.size":0,"network.protocol.version":"1.1","app.tier":"gold"}
}

// SetAttributes: the handler adds what it learned while serving to the
// request's log record (and span, with Tracing). Metrics never see these, so
// an id is fine here.
func ExampleSetAttributes() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration_ms", "ttfb_ms", "client.address":
				return slog.Attr{}
			}
			return a
		},
	}))
	h := middleware.Logger(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		middleware.SetAttributes(r.Context(), attribute.String("app.order_id", "A-1027"), attribute.Int("app.items", 3))
		w.WriteHeader(http.StatusCreated)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/orders", nil))
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"POST","url.path":"/orders","http.response.status_code":201,"http.response.body.size":0,"network.protocol.version":"1.1","app.order_id":"A-1027","app.items":3}
}
