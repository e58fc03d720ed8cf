package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	// fastpath's handlers; gorilla's are "handlers" in rows.go.
	fphandlers "github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
)

// sniffLen is how many body bytes net/http writes itself, with write(2),
// before it hands a file to sendfile(2) (see net/http's response.ReadFrom).
const sniffLen = 512

// fileName is the name the file is served under.
const fileName = "download.bin"

// userAgent is the User-Agent the client sends: a browser's.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// diagSize is the size of the body served to find the copying code.
const diagSize = 256 << 10

// testFile is the file every row serves.
type testFile struct {
	path    string
	data    []byte // the content, to check what the client received
	modTime time.Time
}

// newTestFile writes size random bytes (the same on every run) to dir.
func newTestFile(dir string, size int) (*testFile, error) {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(0xfa57, 0x9a7))
	for i := 0; i < size; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(data[i:], w[:])
	}
	f := &testFile{path: filepath.Join(dir, fileName), data: data, modTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := os.WriteFile(f.path, data, 0o644); err != nil {
		return nil, err
	}
	return f, os.Chtimes(f.path, f.modTime, f.modTime)
}

// span returns the single range the client asks for: half the file, from
// an eighth in.
func (f *testFile) span() (start, end int64) {
	n := int64(len(f.data))
	return n / 8, n/8 + n/2 - 1
}

// kind is a kind of request.
type kind int

const (
	full   kind = iota // the whole file
	ranged             // a single Range
	diag               // the whole of a small in-memory body, to see who copies it
)

// observation is what the server saw of one request. It is JSON so that a
// server running in a child process (under strace) can report it.
type observation struct {
	// Sendfile is the number of bytes sendfile(2) sent on the request's
	// connection, counted by the Listener's *zerocopy.Conn.
	Sendfile int64
	// Logged is what fastpath's Logger recorded.
	Logged logged
	// Chain is the ResponseWriter the file handler was given, then each
	// writer it wraps, down to net/http's.
	Chain []link
	// Initiators are the functions that started the copies of a diag
	// request's body, in the order they first did.
	Initiators []string
	// Err is a problem the server had serving the request.
	Err string
}

// logged is what fastpath's Logger recorded of a request.
type logged struct {
	Records     int   // records logged for the request: 1
	Body        int64 // http.response.body.size
	Status      int   // http.response.status_code
	Sendfile    int64 // fastpath.response.sendfile.size
	HasSendfile bool
	// CopyReason and CopyWrapper are fastpath's diagnosis of a copied body
	// (fastpath.response.copy_reason and fastpath.response.copy_wrapper),
	// empty when it recorded none.
	CopyReason  middleware.CopyReason
	CopyWrapper string
}

// obsKey is the request context key of the request's *observation.
type obsKey struct{}

// logSink is the slog.Handler of fastpath's Logger: it copies the keys the
// matrix needs into the observation of the request the record is about.
type logSink struct{}

func (logSink) Enabled(context.Context, slog.Level) bool { return true }

func (logSink) Handle(ctx context.Context, rec slog.Record) error {
	o, _ := ctx.Value(obsKey{}).(*observation)
	if o == nil {
		return nil
	}
	o.Logged.Records++
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "http.response.body.size":
			o.Logged.Body = a.Value.Int64()
		case "http.response.status_code":
			o.Logged.Status = int(a.Value.Int64())
		case middleware.SendfileSizeKey:
			o.Logged.Sendfile, o.Logged.HasSendfile = a.Value.Int64(), true
		case middleware.CopyReasonKey:
			o.Logged.CopyReason = middleware.CopyReason(a.Value.String())
		case middleware.CopyWrapperKey:
			o.Logged.CopyWrapper = a.Value.String()
		}
		return true
	})
	return nil
}

func (h logSink) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logSink) WithGroup(string) slog.Handler      { return h }

// server is a loopback server for one row.
type server struct {
	srv  *http.Server
	addr string
	h    http.Handler
	obs  chan *observation
}

// providers are the OpenTelemetry SDK providers of fastpath's Tracing and
// Metrics. Nothing exports what they record; they are there so that the
// stack does the work it does in production.
var (
	tracerProvider = sdktrace.NewTracerProvider()
	meterProvider  = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
)

// newRouter returns the application: a chi router with fastpath's stack and
// then the row's middleware, serving the file (or, with diagnose, a small
// in-memory body whose reads are traced) on GET /files/{name}.
//
// The file goes out through handlers.ServeContent, fastpath's own, unless the
// row asks for net/http's: fastpath's handler tells the middleware when the
// writer it copies to lacks io.ReaderFrom or compresses on the fly, so the
// diagnosis fastpath logs applies to every row. The diagnostic body goes
// through http.ServeContent in every row, as handlers.ServeContent takes only
// a file: both hand the body to the writer with io.CopyN, so the same code
// copies it below them.
func newRouter(rw *row, f *testFile, mw func(http.Handler) http.Handler, diagnose bool) http.Handler {
	r := chi.NewRouter()
	r.Use(
		middleware.Tracing(middleware.WithTracerProvider(tracerProvider)),
		middleware.Metrics(middleware.WithMeterProvider(meterProvider)),
		middleware.Logger(slog.New(logSink{})),
		mw,
	)
	contentType := rw.served()
	r.Get("/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		o, _ := r.Context().Value(obsKey{}).(*observation)
		if o == nil {
			http.Error(w, "no observation", http.StatusInternalServerError)
			return
		}
		o.Chain = walkWriters(w)
		if chi.URLParam(r, "name") != fileName {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		if diagnose {
			sr := &stackReader{rs: bytes.NewReader(f.data[:min(diagSize, len(f.data))])}
			http.ServeContent(w, r, "", f.modTime, sr)
			o.Initiators = sr.initiators
			return
		}
		file, err := os.Open(f.path)
		if err != nil {
			o.Err = err.Error()
			http.Error(w, "open failed", http.StatusInternalServerError)
			return
		}
		defer file.Close()
		if rw.netHTTP {
			http.ServeContent(w, r, "", f.modTime, file)
			return
		}
		fphandlers.ServeContent(w, r, "", f.modTime, file)
	})
	return r
}

// startServer serves h on 127.0.0.1 through middleware.Listener.
func startServer(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{addr: ln.Addr().String(), h: h, obs: make(chan *observation, 16)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLogger()}
	go s.srv.Serve(middleware.Listener(ln))
	return s, nil
}

// discardLogger returns a logger for net/http's own errors that drops them:
// a client that stops reading a response early is not news here.
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// ServeHTTP gives the request an observation, runs the application, and
// hands the observation over once the application has returned, with the
// bytes sendfile(2) sent on the connection meanwhile.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := &observation{}
	conn := zerocopy.FromContext(r.Context())
	var before int64
	if conn != nil {
		before = conn.Sendfile()
	}
	defer func() {
		if conn != nil {
			o.Sendfile = conn.Sendfile() - before
		} else {
			o.Err = "the request did not come through middleware.Listener"
		}
		s.obs <- o
	}()
	s.h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), obsKey{}, o)))
}

// next waits for the observation of the next request the server finishes.
func (s *server) next(ctx context.Context) (*observation, error) {
	select {
	case o := <-s.obs:
		return o, nil
	case <-ctx.Done():
		return nil, errors.New("the handler did not return")
	}
}

func (s *server) close() { s.srv.Close() }

// response is what the client saw of one response.
type response struct {
	Status          int
	Body            int64 // body bytes received, as sent (compressed when the body was)
	ContentEncoding string
	ContentLength   int64 // -1 when the response had none (chunked)
}

// fetch makes one request of kind k for rw's row to the server at addr,
// reads the whole body and checks it is the file's content (or the range
// of it), after decompressing it when it was compressed.
func fetch(ctx context.Context, addr string, rw *row, k kind, f *testFile) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+rw.prefix+"/files/"+fileName, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	if !rw.noAcceptEncoding {
		req.Header.Set("Accept-Encoding", "gzip, br")
	}
	if rw.origin {
		req.Header.Set("Origin", origin)
	}
	want := f.data
	switch k {
	case ranged:
		start, end := f.span()
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
	case diag:
		want = f.data[:min(diagSize, len(f.data))]
	}
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true},
		Timeout:   5 * time.Minute,
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	out := response{Status: resp.StatusCode, ContentEncoding: resp.Header.Get("Content-Encoding"), ContentLength: resp.ContentLength}
	if k == ranged && resp.StatusCode == http.StatusPartialContent {
		start, end := f.span()
		if cr, wantCR := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", start, end, len(f.data)); cr != wantCR {
			return out, fmt.Errorf("Content-Range %q, want %q", cr, wantCR)
		}
		want = f.data[start : end+1]
	}
	counted := &testutil.CountingReader{R: resp.Body}
	var body io.Reader = counted
	switch out.ContentEncoding {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(counted)
		if err != nil {
			return out, fmt.Errorf("gzip body: %w", err)
		}
		body = zr
	default:
		return out, fmt.Errorf("unexpected Content-Encoding %q", out.ContentEncoding)
	}
	cmp := &compareWriter{want: want}
	if _, err := io.Copy(cmp, body); err != nil {
		return out, fmt.Errorf("reading the body: %w", err)
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return out, fmt.Errorf("reading the body: %w", err)
	}
	out.Body = counted.N
	if resp.StatusCode >= 300 {
		return out, fmt.Errorf("status %d", resp.StatusCode)
	}
	if cmp.off != len(want) {
		return out, fmt.Errorf("the body is %d bytes once decoded, want %d", cmp.off, len(want))
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.FormatInt(out.Body, 10) {
		return out, fmt.Errorf("Content-Length %s, received %d", cl, out.Body)
	}
	return out, nil
}

// compareWriter fails when what is written to it differs from want.
type compareWriter struct {
	want []byte
	off  int
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if len(p) > len(c.want)-c.off || !bytes.Equal(p, c.want[c.off:c.off+len(p)]) {
		return 0, fmt.Errorf("the body differs from the file after byte %d", c.off)
	}
	c.off += len(p)
	return len(p), nil
}

// measurement is one request of one row, seen from both ends.
type measurement struct {
	client   response
	server   observation
	reported *int64 // the size the middleware reported, when it reports one
}

// kept reports whether every body byte past the first 512 went by sendfile.
func (m measurement) kept() bool {
	return m.client.Body > sniffLen && m.server.Sendfile >= m.client.Body-sniffLen
}

// result is one row of the matrix.
type result struct {
	row     *row
	module  string // module@version, or what stands for it
	full    measurement
	rng     measurement
	culprit string // the function that started the copy, when sendfile was lost
}

// measure serves one request of kind k for rw on a fresh server with a fresh
// instance of the middleware, and returns what both ends saw.
func measure(ctx context.Context, rw *row, k kind, f *testFile) (measurement, error) {
	inst := rw.new()
	s, err := startServer(newRouter(rw, f, inst.mw, k == diag))
	if err != nil {
		return measurement{}, err
	}
	defer s.close()
	resp, err := fetch(ctx, s.addr, rw, k, f)
	if err != nil {
		return measurement{client: resp}, err
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	o, err := s.next(wait)
	if err != nil {
		return measurement{client: resp}, err
	}
	m := measurement{client: resp, server: *o}
	if o.Err != "" {
		return m, errors.New(o.Err)
	}
	if k != diag {
		if err := m.check(); err != nil {
			return m, err
		}
	}
	if inst.reported != nil && k != diag {
		n, err := inst.reported()
		if err != nil {
			return m, fmt.Errorf("the size the middleware reported: %w", err)
		}
		m.reported = &n
	}
	return m, nil
}

// check returns an error when the measurement does not hang together: the
// Logger's record is missing, its sendfile count disagrees with the
// connection's, or it gives a copy reason for a body sendfile sent.
func (m measurement) check() error {
	lg := m.server.Logged
	if lg.Records != 1 {
		return fmt.Errorf("fastpath's Logger wrote %d records, want 1", lg.Records)
	}
	if !lg.HasSendfile {
		return errors.New("fastpath's Logger recorded no sendfile size though it was served through Listener")
	}
	if lg.Sendfile != m.server.Sendfile {
		return fmt.Errorf("fastpath's Logger recorded %d sendfile bytes, the connection counted %d", lg.Sendfile, m.server.Sendfile)
	}
	if m.kept() && lg.CopyReason != "" {
		return fmt.Errorf("fastpath's Logger recorded copy reason %q (wrapper %q) for a body sendfile sent", lg.CopyReason, lg.CopyWrapper)
	}
	return nil
}

// measureRow measures rw: a full download, a range, and, when either lost
// the fast path, a diagnostic request that finds the code that copied.
func measureRow(ctx context.Context, rw *row, f *testFile) (result, error) {
	res := result{row: rw}
	var err error
	if res.module, err = moduleVersion(rw.module); err != nil {
		return res, err
	}
	if res.full, err = measure(ctx, rw, full, f); err != nil {
		return res, fmt.Errorf("full download: %w", err)
	}
	if res.rng, err = measure(ctx, rw, ranged, f); err != nil {
		return res, fmt.Errorf("range: %w", err)
	}
	if !res.full.kept() || !res.rng.kept() {
		d, err := measure(ctx, rw, diag, f)
		if err != nil {
			return res, fmt.Errorf("diagnostic request: %w", err)
		}
		res.culprit = culprit(d.server.Initiators)
	}
	return res, nil
}

// run measures every row, in order, on a file of size bytes, and prints
// progress to progress when it is not nil.
func run(ctx context.Context, size int, progress io.Writer) ([]result, error) {
	dir, err := os.MkdirTemp("", "fastpath-compat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f, err := newTestFile(dir, size)
	if err != nil {
		return nil, err
	}
	results := make([]result, 0, len(rows))
	for _, rw := range rows {
		start := time.Now()
		res, err := measureRow(ctx, rw, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rw.id, err)
		}
		if progress != nil {
			fmt.Fprintf(progress, "%-20s full %-5v range %-5v %6.2fs\n", rw.id, res.full.kept(), res.rng.kept(), time.Since(start).Seconds())
		}
		results = append(results, res)
	}
	return results, nil
}

// generate measures every row and returns the Markdown document.
func generate(ctx context.Context, size int, progress io.Writer) (string, error) {
	results, err := run(ctx, size, progress)
	if err != nil {
		return "", err
	}
	return render(results, currentEnvironment(), size), nil
}
