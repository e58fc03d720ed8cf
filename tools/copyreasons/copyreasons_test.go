package copyreasons

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httplog/v3"
	gorilla "github.com/gorilla/handlers"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

// The wrappers the cases blame, as fastpath names them.
const (
	hideType = "*copyreasons.hideReadFrom from github.com/fastpath-go/fastpath/tools/copyreasons"
	chiType  = "*middleware.compressResponseWriter from github.com/go-chi/chi/v5/middleware"
	teeType  = "*middleware.httpFancyWriter from github.com/go-chi/chi/v5/middleware"
)

// cases are issue 21's table: for each reason a stack that causes it, and a
// healthy stack that gives none. Every stack is chi with fastpath's Tracing,
// Metrics and Logger in front (see router), on a middleware.Listener.
//
// A case without a reason keeps the fast path: sendfile sends all but the
// 512 bytes net/http writes itself. Every case with one sends nothing by
// sendfile (small_body too, though it is no loss).
var cases = []copyCase{
	{name: "healthy", stack: files(), path: "/big.txt"},
	{name: "wrapper inside the middlewares", stack: files(hide), path: "/big.txt",
		reason: "no_readfrom", wrapper: hideType},
	{name: "wrapper outside the middlewares", stack: outside(hide, files()), path: "/big.txt",
		reason: "no_readfrom", wrapper: hideType},
	// A wrapper that keeps io.ReaderFrom and copies in it: chi's
	// WrapResponseWriter with a Tee, as httplog's LogResponseBody sets it
	// up. Only Listener's counters see the copy: outside, below the
	// writer fastpath's ReadFrom hands the file to; inside, where the
	// file never reaches that ReadFrom, though FileServer handed it on.
	{name: "httplog LogResponseBody outside the middlewares", stack: outside(bodyLog, files()), path: "/big.txt",
		reason: "no_readfrom", wrapper: teeType},
	{name: "httplog LogResponseBody inside the middlewares", stack: files(bodyLog), path: "/big.txt",
		reason: "no_readfrom", wrapper: teeType},
	{name: "chi Compress, text/plain", stack: files(chimw.Compress(5)), path: "/page.txt", acceptEncoding: "gzip",
		reason: "encoded", wrapper: chiType},
	{name: "chi Compress, video/mp4 it leaves alone", stack: files(chimw.Compress(5)), path: "/video.mp4", acceptEncoding: "gzip",
		reason: "no_readfrom", wrapper: chiType},
	// gorilla's writer keeps io.ReaderFrom (through httpsnoop) and copies
	// in it, so no writer lacks it: there is no type to name.
	{name: "gorilla CompressHandler", stack: files(gorilla.CompressHandler), path: "/page.txt", acceptEncoding: "gzip",
		reason: "encoded"},
	{name: "io.Copy without Content-Length", stack: route(ioCopy), path: "/big.txt",
		reason: "chunked"},
	{name: "TLS", proto: tlsHTTP1, stack: files(), path: "/big.txt",
		reason: "client_tls"},
	{name: "HTTP/2", proto: tlsHTTP2, stack: files(), path: "/big.txt",
		reason: "client_http2"},
	{name: "embed.FS", stack: route(embedded), path: "/embedded.txt",
		reason: "not_file"},
	{name: "http.ServeContent multi-range", stack: route(serveContent), path: "/big.txt", ranges: [][2]int{{0, 999}, {4096, 8191}},
		reason: "multirange"},
	{name: "100-byte file", stack: files(), path: "/small.txt",
		reason: "small_body"},
	// Not in the list, but in the set: sendfile(2) refuses a pipe.
	{name: "io.Copy from a pipe", stack: route(pipe), path: "/big.txt",
		reason: "not_regular_file"},
}

// copyCase is one row of cases.
type copyCase struct {
	name  string
	proto proto // how the server listens
	stack stack // the application

	// The request: GET path, with Accept-Encoding and the byte ranges
	// (first and last byte of each) when set.
	path           string
	acceptEncoding string
	ranges         [][2]int

	// What fastpath must record: why the body was copied ("" when it was
	// not) and the wrapper to blame ("" when none is).
	reason  middleware.CopyReason
	wrapper string
}

// proto is how a case's server listens.
type proto int

const (
	plainHTTP1 proto = iota // HTTP/1.1 over TCP
	tlsHTTP1                // HTTP/1.1 over crypto/tls (httptest's StartTLS)
	tlsHTTP2                // HTTP/2 over crypto/tls (httptest's EnableHTTP2)
)

// app is what a stack is built from.
type app struct {
	fastpath []func(http.Handler) http.Handler // Tracing, Metrics and Logger
	root     *os.Root                          // the files of writeFiles
}

// stack builds a case's application.
type stack func(a app) http.Handler

// files is the stack of most file servers: chi, fastpath's middlewares,
// then mws, then handlers.FileServer.
func files(mws ...func(http.Handler) http.Handler) stack {
	return func(a app) http.Handler { return router(a, mws, handlers.FileServer(a.root)) }
}

// route is chi and fastpath's middlewares in front of the handler h makes.
func route(h func(a app) http.Handler) stack {
	return func(a app) http.Handler { return router(a, nil, h(a)) }
}

// router is chi with fastpath's middlewares, then mws, in front of h on
// every path.
func router(a app, mws []func(http.Handler) http.Handler, h http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Use(a.fastpath...)
	r.Use(mws...)
	r.Handle("/*", h)
	return r
}

// hideReadFrom is the wrapper everybody writes once: embedding
// http.ResponseWriter gives it Header, Write and WriteHeader, and hides
// io.ReaderFrom.
type hideReadFrom struct{ http.ResponseWriter }

// hide is middleware that hands the next handler a hideReadFrom.
func hide(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&hideReadFrom{w}, r)
	})
}

// outside puts mw around the whole of s, in front of fastpath's
// middlewares.
func outside(mw func(http.Handler) http.Handler, s stack) stack {
	return func(a app) http.Handler { return mw(s(a)) }
}

// bodyLog is httplog logging every response body, which it captures with
// chi's WrapResponseWriter and a Tee.
var bodyLog = httplog.RequestLogger(slog.New(slog.DiscardHandler), &httplog.Options{
	LogResponseBody: func(*http.Request) bool { return true },
})

// ioCopy writes the file asked for with io.Copy and no Content-Length, so
// net/http sends it chunked.
func ioCopy(a app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := a.root.Open(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		io.Copy(w, f)
	})
}

// serveContent answers with http.ServeContent, which sends a multi-range
// answer through an io.Pipe.
func serveContent(a app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := a.root.Open(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, "stat failed", http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	})
}

// pipe copies the file asked for from an os.Pipe with io.Copy, with its
// Content-Length: an *os.File, and not a regular one.
func pipe(a app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := a.root.ReadFile(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			http.Error(w, "pipe failed", http.StatusInternalServerError)
			return
		}
		defer pr.Close()
		go func() {
			pw.Write(b)
			pw.Close()
		}()
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		io.Copy(w, pr)
	})
}

//go:embed testdata/embedded.txt
var embeddedFiles embed.FS

// embedded serves the page compiled into the binary with net/http's
// FileServer.
func embedded(app) http.Handler {
	sub, err := fs.Sub(embeddedFiles, "testdata")
	if err != nil {
		panic(err) // cannot happen: testdata is embedded
	}
	return http.FileServer(http.FS(sub))
}

// The sizes of the files writeFiles writes.
const (
	bigSize   = 1 << 20  // big.txt and video.mp4
	pageSize  = 64 << 10 // page.txt, which the compressors compress (a megabyte takes seconds under -race)
	smallSize = 100      // small.txt
)

// writeFiles writes the files the servers serve to dir and returns every
// file's content, the embedded page's too, by its URL path.
func writeFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	page, err := embeddedFiles.ReadFile("testdata/embedded.txt")
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{
		"/big.txt":      []byte(hex.EncodeToString(testutil.RandomBytes(bigSize / 2))),
		"/page.txt":     []byte(hex.EncodeToString(testutil.RandomBytes(pageSize / 2))), // text chi and gorilla compress
		"/video.mp4":    testutil.RandomBytes(bigSize),                                  // a type chi does not compress
		"/small.txt":    bytes.Repeat([]byte("0123456789"), smallSize/10),
		"/embedded.txt": page,
	}
	for p, b := range content {
		if p == "/embedded.txt" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return content
}

// newApp returns the app of a server that logs to logs, traces to tp and
// measures to mp, over root.
func newApp(root *os.Root, logs io.Writer, tp trace.TracerProvider, mp metric.MeterProvider) app {
	return app{root: root, fastpath: []func(http.Handler) http.Handler{
		middleware.Tracing(middleware.WithTracerProvider(tp)),
		middleware.Metrics(middleware.WithMeterProvider(mp)),
		middleware.Logger(slog.New(slog.NewJSONHandler(logs, nil))),
	}}
}

// start serves tc's stack on a loopback server whose listener is
// middleware.Listener. The channel receives once a request's handler, with
// everything fastpath records, has returned.
func start(tc copyCase, a app) (*httptest.Server, <-chan struct{}) {
	h := tc.stack(a)
	done := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		select {
		case done <- struct{}{}:
		default: // a second request: the test counts the log records
		}
	}))
	srv.Listener = middleware.Listener(srv.Listener)
	switch tc.proto {
	case plainHTTP1:
		srv.Start()
	case tlsHTTP1:
		srv.StartTLS()
	case tlsHTTP2:
		srv.EnableHTTP2 = true
		srv.StartTLS()
	}
	return srv, done
}

// timeout bounds a request or a child process: far above what a few
// megabytes over loopback take under -race on a loaded machine.
const timeout = 2 * time.Minute

// get sends tc's request to the server at base, checks that the answer is
// the file asked for (whole, or the ranges asked for), over the protocol
// tc's server speaks and compressed exactly when tc's reason says so, and
// returns the body as it came.
func get(t *testing.T, tc copyCase, base string, content map[string][]byte) []byte {
	t.Helper()
	tr := &http.Transport{
		DisableCompression: true, // Accept-Encoding only where a case sends it, and the body as sent
		ForceAttemptHTTP2:  tc.proto == tlsHTTP2,
		// The test's own loopback server, whose certificate a child
		// process may have made.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+tc.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tc.acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", tc.acceptEncoding)
	}
	var want []string
	for _, r := range tc.ranges {
		want = append(want, fmt.Sprintf("%d-%d", r[0], r[1]))
	}
	if len(want) > 0 {
		req.Header.Set("Range", "bytes="+strings.Join(want, ","))
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}

	if wantMajor := map[bool]int{false: 1, true: 2}[tc.proto == tlsHTTP2]; resp.ProtoMajor != wantMajor {
		t.Fatalf("answered over %s, want HTTP/%d", resp.Proto, wantMajor)
	}
	if (resp.TLS != nil) != (tc.proto != plainHTTP1) {
		t.Fatalf("TLS state %v for %v", resp.TLS != nil, tc.proto)
	}
	decoded := body
	switch ce := resp.Header.Get("Content-Encoding"); {
	case tc.reason == middleware.CopyReasonEncoded && ce != "gzip":
		t.Fatalf("Content-Encoding %q, want gzip", ce)
	case tc.reason != middleware.CopyReasonEncoded && ce != "":
		t.Fatalf("Content-Encoding %q, want none", ce)
	case ce == "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		if decoded, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	file := content[tc.path]
	if len(tc.ranges) == 0 {
		if resp.StatusCode != http.StatusOK || !bytes.Equal(decoded, file) {
			t.Fatalf("status %d, %d bytes decoded; want 200 and the %d bytes of %s", resp.StatusCode, len(decoded), len(file), tc.path)
		}
		return body
	}
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("status %d, want 206", resp.StatusCode)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q (%v), want multipart/byteranges", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(bytes.NewReader(decoded), params["boundary"])
	for i, r := range tc.ranges {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, file[r[0]:r[1]+1]) {
			t.Fatalf("part %d: %d bytes (%v), want bytes %d-%d of %s", i, len(got), err, r[0], r[1], tc.path)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("after %d parts: %v, want EOF", len(tc.ranges), err)
	}
	return body
}

// sniffLen is how many body bytes net/http writes itself before it hands
// the rest to sendfile.
const sniffLen = 512

// wantSendfile is what sendfile(2) must have sent of a body of n bytes: all
// but the first 512 when tc keeps the fast path, else nothing.
func (tc copyCase) wantSendfile(n int) int64 {
	if tc.reason == "" {
		return int64(n) - sniffLen
	}
	return 0
}

// TestCopyReasons runs each case on a server in this process and checks the
// reason and the wrapper fastpath records in the log record, on the span,
// and in fastpath.server.response.copied.size.
func TestCopyReasons(t *testing.T) {
	dir := t.TempDir()
	content := writeFiles(t, dir)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testutil.LockedBuffer{}
			spans := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(context.Background())
			defer tp.Shutdown(context.Background())

			srv, done := start(tc, newApp(root, logs, tp, mp))
			defer srv.Close()
			body := get(t, tc, srv.URL, content)
			select {
			case <-done:
			case <-time.After(timeout):
				t.Fatal("the handler did not return")
			}

			// The log record.
			rec := oneRecord(t, logs.String())
			bodySize, sendfile := loggedSizes(t, rec)
			if bodySize != int64(len(body)) {
				t.Errorf("logged body size %d, the client received %d bytes", bodySize, len(body))
			}
			if want := tc.wantSendfile(len(body)); sendfile != want {
				t.Errorf("logged sendfile size %d, want %d", sendfile, want)
			}
			checkReason(t, "log record", tc, func(key string) (string, bool) {
				v, ok := rec[key]
				s, _ := v.(string)
				return s, ok
			})

			// The span.
			ended := spans.GetSpans()
			if len(ended) != 1 {
				t.Fatalf("%d spans, want 1", len(ended))
			}
			checkReason(t, "span", tc, func(key string) (string, bool) {
				for _, kv := range ended[0].Attributes {
					if string(kv.Key) == key {
						return kv.Value.Emit(), true
					}
				}
				return "", false
			})

			// The metric: one point for a loss, none otherwise.
			points := copiedPoints(t, reader)
			if tc.reason == "" || tc.reason == middleware.CopyReasonSmallBody {
				if len(points) != 0 {
					t.Errorf("%s has %d points, want none: %+v", middleware.CopiedSizeMetric, len(points), points)
				}
				return
			}
			if len(points) != 1 {
				t.Fatalf("%s has %d points, want 1: %+v", middleware.CopiedSizeMetric, len(points), points)
			}
			p := points[0]
			if got, _ := p.Attributes.Value(middleware.CopyReasonKey); got.AsString() != string(tc.reason) {
				t.Errorf("%s: %s = %q, want %q", middleware.CopiedSizeMetric, middleware.CopyReasonKey, got.Emit(), tc.reason)
			}
			if got, ok := p.Attributes.Value(middleware.CopyWrapperKey); ok {
				t.Errorf("%s: %s = %q, want none: types do not belong in metrics", middleware.CopiedSizeMetric, middleware.CopyWrapperKey, got.Emit())
			}
			if want := bodySize - sendfile - sniffLen; p.Count != 1 || p.Sum != want {
				t.Errorf("%s: count %d, sum %d; want 1 and %d (body %d - sendfile %d - %d)",
					middleware.CopiedSizeMetric, p.Count, p.Sum, want, bodySize, sendfile, sniffLen)
			}
		})
	}
}

// oneRecord parses the one JSON log record in logs.
func oneRecord(t *testing.T, logs string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("%d log records, want 1:\n%s", len(lines), logs)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("log record %s: %v", lines[0], err)
	}
	return rec
}

// loggedSizes returns the body and sendfile sizes in a log record.
func loggedSizes(t *testing.T, rec map[string]any) (body, sendfile int64) {
	t.Helper()
	b, ok1 := rec["http.response.body.size"].(float64)
	s, ok2 := rec[middleware.SendfileSizeKey].(float64)
	if !ok1 || !ok2 {
		t.Fatalf("log record without http.response.body.size or %s: %v", middleware.SendfileSizeKey, rec)
	}
	return int64(b), int64(s)
}

// checkReason checks the copy reason and wrapper of one of the records
// (where), read through look, against tc's: absent when tc has none.
func checkReason(t *testing.T, where string, tc copyCase, look func(key string) (string, bool)) {
	t.Helper()
	for _, kv := range []struct{ key, want string }{
		{middleware.CopyReasonKey, string(tc.reason)},
		{middleware.CopyWrapperKey, tc.wrapper},
	} {
		got, ok := look(kv.key)
		switch {
		case kv.want == "" && ok:
			t.Errorf("%s: %s = %q, want none", where, kv.key, got)
		case kv.want != "" && !ok:
			t.Errorf("%s: no %s, want %q", where, kv.key, kv.want)
		case got != kv.want:
			t.Errorf("%s: %s = %q, want %q", where, kv.key, got, kv.want)
		}
	}
}

// copiedPoints returns the points of fastpath.server.response.copied.size.
func copiedPoints(t *testing.T, reader *sdkmetric.ManualReader) []metricdata.HistogramDataPoint[int64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != middleware.CopiedSizeMetric {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[int64])
			if !ok {
				t.Fatalf("%s is a %T, want an int64 histogram", m.Name, m.Data)
			}
			return h.DataPoints
		}
	}
	return nil
}
