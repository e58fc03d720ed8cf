package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

// childEnv carries a childConfig (as JSON) to a re-executed test binary,
// which then runs a server instead of the tests.
const childEnv = "FASTPATH_INTEGRATION_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

// childConfig describes the server a child process runs.
type childConfig struct {
	Router string // "chi" or "mux"
	Dir    string // the files served
	Log    string // where the JSON request log goes
	Wrap   string // "", "inner-hide", "outer-keep" or "outer-hide"
	TLS    bool
	HTTP2  bool
}

// hider is the naive wrapper: it hides every optional interface, io.ReaderFrom
// among them.
type hider struct{ http.ResponseWriter }

// childHandler returns the application the child serves: a file route that
// uses http.ServeContent and one that copies a file without Content-Length.
func childHandler(cfg childConfig) http.Handler {
	// file serves name with http.ServeContent, or with a plain io.Copy,
	// without Content-Length (chunked) or with it (copied).
	file := func(w http.ResponseWriter, r *http.Request, name string, how string) {
		f, err := os.Open(filepath.Join(cfg.Dir, filepath.Base(name)))
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
		switch how {
		case "chunked":
			io.Copy(w, f)
			return
		case "copied":
			w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
			io.Copy(w, f)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	}
	inner := func(next http.Handler) http.Handler {
		if cfg.Wrap != "inner-hide" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(hider{w}, r) })
	}
	stack := []func(http.Handler) http.Handler{
		middleware.Tracing(middleware.WithTracerProvider(sdktrace.NewTracerProvider())),
		middleware.Metrics(middleware.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))),
	}
	var h http.Handler
	switch cfg.Router {
	case "chi":
		r := chi.NewRouter()
		r.Use(stack...)
		r.Use(loggerFor(cfg), chimw.GetHead, inner)
		for _, how := range []string{"files", "chunked", "copied"} {
			r.Get("/"+how+"/{name}", func(w http.ResponseWriter, r *http.Request) { file(w, r, chi.URLParam(r, "name"), how) })
		}
		r.Handle("/fs/*", http.StripPrefix("/fs", fileServer(cfg)))
		h = r
	default:
		mux := http.NewServeMux()
		for _, how := range []string{"files", "chunked", "copied"} {
			mux.HandleFunc("GET /"+how+"/{name}", func(w http.ResponseWriter, r *http.Request) { file(w, r, r.PathValue("name"), how) })
		}
		mux.Handle("/fs/", http.StripPrefix("/fs", fileServer(cfg)))
		h = stack[0](stack[1](loggerFor(cfg)(inner(mux))))
	}
	switch cfg.Wrap {
	case "outer-keep":
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(httpsnoop.Wrap(w, httpsnoop.Hooks{}), r)
		})
	case "outer-hide":
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(hider{w}, r) })
	}
	return h
}

var childLog *os.File

// fileServer is the handlers package's file server over cfg.Dir.
func fileServer(cfg childConfig) http.Handler {
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		panic(err)
	}
	return handlers.FileServer(root)
}

func loggerFor(cfg childConfig) func(http.Handler) http.Handler {
	return middleware.Logger(slog.New(slog.NewJSONHandler(childLog, nil)))
}

// runChild serves until its standard input closes, printing its address on
// standard output first.
func runChild(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	var err error
	if childLog, err = os.Create(cfg.Log); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer childLog.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv := &http.Server{Handler: childHandler(cfg), ReadHeaderTimeout: 10 * time.Second}
	var zln net.Listener = middleware.Listener(ln)
	if cfg.TLS {
		cert, err := selfSigned()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(cfg.HTTP2)
	}
	go func() {
		if cfg.TLS {
			srv.ServeTLS(zln, "", "")
		} else {
			srv.Serve(zln)
		}
	}()
	fmt.Printf("ADDR %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shutdown:", err)
		return 1
	}
	return 0
}

// child is a server process running under strace.
type child struct {
	proc  *testutil.Child
	addr  string
	trace string
	log   string
}

// startChild runs the test binary as a server with cfg, under strace.
func startChild(t *testing.T, cfg childConfig) *child {
	t.Helper()
	dir := t.TempDir()
	cfg.Log = filepath.Join(dir, "requests.log")
	raw, _ := json.Marshal(cfg)
	c := &child{trace: filepath.Join(dir, "strace.out"), log: cfg.Log}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := strace.Command(ctx, c.trace, []string{"sendfile"}, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	var line string
	c.proc, line = testutil.StartChild(t, cmd)
	c.addr = strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	return c
}

// stop shuts the child down and returns its request log records and what
// strace saw.
func (c *child) stop(t *testing.T) ([]map[string]any, strace.Summary) {
	t.Helper()
	if err := c.proc.Stop(); err != nil {
		t.Fatalf("child: %v", err)
	}
	sum, err := strace.ParseFile(c.trace)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(c.log)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs, sum
}

// TestEndToEndStrace runs the full fastpath stack in a child process under
// strace and checks, for each kind of response, that the body bytes the
// client received equal the bytes recorded, and that the sendfile bytes
// recorded equal the sum of sendfile(2) results strace saw.
func TestEndToEndStrace(t *testing.T) {
	if err := strace.Check(); err != nil {
		t.Skip("skipping: ", err)
	}
	const size = 4 << 20
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "blob.bin", size)
	gz := testutil.WriteRandomFile(t, dir, "blob.bin.gz", 3<<20) // a stand-in sidecar: served, never decoded
	multipart := func(parts ...[2]int) func(t *testing.T, resp *http.Response, body []byte) {
		return func(t *testing.T, resp *http.Response, body []byte) {
			checkMultipart(t, resp, body, data, parts)
		}
	}

	tests := []struct {
		name         string
		method       string
		path         string
		header       http.Header
		wrap         string
		tls, http2   bool
		wantStatus   int
		wantBody     []byte // nil: check the length only
		wantLen      int64
		wantSendfile int64
		check        func(t *testing.T, resp *http.Response, body []byte)
	}{
		{name: "full download", path: "/files/blob.bin",
			wantStatus: 200, wantBody: data, wantSendfile: size - sniffLen},
		{name: "single range", path: "/files/blob.bin", header: http.Header{"Range": {"bytes=1000-2000999"}},
			wantStatus: 206, wantBody: data[1000:2001000], wantSendfile: 2000000 - sniffLen},
		{name: "suffix range", path: "/files/blob.bin", header: http.Header{"Range": {"bytes=-1048576"}},
			wantStatus: 206, wantBody: data[size-1048576:], wantSendfile: 1048576 - sniffLen},
		{name: "multi-range", path: "/files/blob.bin", header: http.Header{"Range": {"bytes=0-999,2000000-2999999"}},
			wantStatus: 206, wantLen: -1, wantSendfile: 0},
		{name: "HEAD", method: "HEAD", path: "/files/blob.bin",
			wantStatus: 200, wantLen: 0, wantSendfile: 0},
		{name: "not modified", path: "/files/blob.bin", header: http.Header{"If-None-Match": {`"v1"`}},
			wantStatus: 304, wantLen: 0, wantSendfile: 0},
		{name: "inner wrapper hides ReaderFrom", path: "/files/blob.bin", wrap: "inner-hide",
			wantStatus: 200, wantBody: data, wantSendfile: 0},
		{name: "outer wrapper keeps ReaderFrom", path: "/files/blob.bin", wrap: "outer-keep",
			wantStatus: 200, wantBody: data, wantSendfile: size - sniffLen},
		{name: "outer wrapper hides ReaderFrom", path: "/files/blob.bin", wrap: "outer-hide",
			wantStatus: 200, wantBody: data, wantSendfile: 0},
		{name: "chunked io.Copy", path: "/chunked/blob.bin",
			wantStatus: 200, wantBody: data, wantSendfile: 0},
		{name: "io.Copy with Content-Length", path: "/copied/blob.bin",
			wantStatus: 200, wantBody: data, wantSendfile: size - sniffLen},
		{name: "TLS", path: "/files/blob.bin", tls: true,
			wantStatus: 200, wantBody: data, wantSendfile: 0},
		{name: "HTTP/2", path: "/files/blob.bin", tls: true, http2: true,
			wantStatus: 200, wantBody: data, wantSendfile: 0},
		{name: "handlers: full download", path: "/fs/blob.bin",
			wantStatus: 200, wantBody: data, wantSendfile: size - sniffLen},
		{name: "handlers: single range", path: "/fs/blob.bin", header: http.Header{"Range": {"bytes=4096-1052671"}},
			wantStatus: 206, wantBody: data[4096:1052672], wantSendfile: 1<<20 - sniffLen},
		// Each part goes through ReadFrom; net/http writes the first 512
		// bytes of the first part itself, as for any body.
		{name: "handlers: multi-range", path: "/fs/blob.bin", header: http.Header{"Range": {"bytes=0-999,2000000-2999999,4000000-4100000"}},
			wantStatus: 206, wantLen: -1, wantSendfile: 1000 + 1000000 + 100001 - sniffLen,
			check: multipart([2]int{0, 1000}, [2]int{2000000, 3000000}, [2]int{4000000, 4100001})},
		{name: "handlers: precompressed", path: "/fs/blob.bin", header: http.Header{"Accept-Encoding": {"gzip"}},
			wantStatus: 200, wantBody: gz, wantSendfile: 3<<20 - sniffLen,
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
					t.Errorf("Content-Encoding %q, want gzip", got)
				}
			}},
	}
	for _, router := range []string{"chi", "mux"} {
		for _, tt := range tests {
			t.Run(router+"/"+tt.name, func(t *testing.T) {
				c := startChild(t, childConfig{Router: router, Dir: dir, Wrap: tt.wrap, TLS: tt.tls, HTTP2: tt.http2})
				method := tt.method
				if method == "" {
					method = "GET"
				}
				scheme := "http"
				tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
				if tt.tls {
					scheme = "https"
					tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
					tr.ForceAttemptHTTP2 = tt.http2
				}
				req, err := http.NewRequest(method, scheme+"://"+c.addr+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tt.header {
					req.Header[k] = v
				}
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				tr.CloseIdleConnections()
				recs, sum := c.stop(t)

				checkResponse(t, resp, body, tt.wantStatus, tt.http2, tt.wantBody, tt.wantLen)
				if tt.check != nil {
					tt.check(t, resp, body)
				}
				if len(recs) != 1 {
					t.Fatalf("got %d log records, want 1", len(recs))
				}
				rec := recs[0]
				if got := int64(rec["http.response.body.size"].(float64)); got != int64(len(body)) {
					t.Errorf("recorded body size %d, client received %d", got, len(body))
				}
				if got := int(rec["http.response.status_code"].(float64)); got != tt.wantStatus {
					t.Errorf("recorded status %d, want %d", got, tt.wantStatus)
				}
				recorded := int64(rec[middleware.SendfileSizeKey].(float64))
				saw := sum["sendfile"]
				if recorded != saw.Sum {
					t.Errorf("recorded sendfile size %d, strace saw sendfile(2) return %d bytes in %d calls", recorded, saw.Sum, saw.Count)
				}
				if recorded != tt.wantSendfile {
					t.Errorf("recorded sendfile size %d, want %d", recorded, tt.wantSendfile)
				}
			})
		}
	}
}

// checkMultipart checks a multipart/byteranges body part by part against
// data.
func checkMultipart(t *testing.T, resp *http.Response, body, data []byte, parts [][2]int) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q, body %d bytes", cl, len(body))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, want := range parts {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, data[want[0]:want[1]]) {
			t.Errorf("part %d: %d bytes (%v), want bytes %d-%d of the file", i, len(got), err, want[0], want[1]-1)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after %d parts: %v, want EOF", len(parts), err)
	}
}

// checkResponse checks a response's status, protocol and body: the exact
// bytes when wantBody is not nil, else the length when wantLen >= 0.
func checkResponse(t *testing.T, resp *http.Response, body []byte, wantStatus int, http2 bool, wantBody []byte, wantLen int64) {
	t.Helper()
	if resp.StatusCode != wantStatus {
		t.Fatalf("status %d, want %d", resp.StatusCode, wantStatus)
	}
	if wantProto := map[bool]int{false: 1, true: 2}[http2]; resp.ProtoMajor != wantProto {
		t.Fatalf("got %s, want HTTP/%d", resp.Proto, wantProto)
	}
	switch {
	case wantBody != nil && !bytes.Equal(body, wantBody):
		t.Fatalf("client got %d bytes that differ from the %d expected", len(body), len(wantBody))
	case wantBody == nil && wantLen >= 0 && int64(len(body)) != wantLen:
		t.Fatalf("client got %d bytes, want %d", len(body), wantLen)
	}
}
