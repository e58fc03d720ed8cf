package integration

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

// TestCheckZeroCopy checks the kit's verdict, counts and reasons for stacks
// that keep and lose the fast path.
func TestCheckZeroCopy(t *testing.T) {
	dir := t.TempDir()
	const size = 1 << 20
	testutil.WriteRandomFile(t, dir, "big.bin", size)
	testutil.WriteRandomFile(t, dir, "small.bin", 100)
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.URL.Path)))
	})
	chunked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _ := os.Open(filepath.Join(dir, "big.bin"))
		defer f.Close()
		io.Copy(w, f)
	})
	// moved redirects as a renamed file's old URL does; net/http's client
	// follows 301, 302, 303, 307 and 308 with a Location, and nothing else.
	moved := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old.bin":
			http.Redirect(w, r, "/big.bin", http.StatusMovedPermanently)
		case "/choices":
			w.Header().Set("Location", "/big.bin")
			w.WriteHeader(http.StatusMultipleChoices)
		case "/nowhere":
			w.WriteHeader(http.StatusTemporaryRedirect)
		default:
			serve(w, r)
		}
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	files := handlers.FileServer(root)
	// Two 999,744-byte parts and a 1,000-byte one; the part headers and
	// the first part's first 512 bytes go by write(2).
	const threeRanges = "bytes=0-999743,1000000-1999743,2000000-2000999"
	testutil.WriteRandomFile(t, dir, "huge.bin", 3<<20)
	tests := []struct {
		name         string
		h            http.Handler
		path         string
		method       string // default GET
		header       http.Header
		opts         []Option
		wantErr      string // "" for kept
		wantReason   string // Report.Reason, when the response is not kept
		wantCopy     middleware.CopyReason
		wantWrapper  string
		wantSendfile int64
		wantBody     int64
	}{
		{name: "net/http alone", h: serve, path: "/big.bin",
			wantSendfile: size - 512, wantBody: size},
		{name: "fastpath stack", h: middleware.Tracing()(middleware.Metrics()(middleware.Logger(quiet)(serve))), path: "/big.bin",
			wantSendfile: size - 512, wantBody: size},
		{name: "range", h: serve, path: "/big.bin", header: http.Header{"Range": {"bytes=0-99999"}},
			wantSendfile: 100000 - 512, wantBody: 100000},
		{name: "naive wrapper", h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(hider{w}, r) }), path: "/big.bin",
			wantErr: "sendfile sent 0 of 1048576 body bytes (0%): a ResponseWriter wrapper between the handler and net/http hides io.ReaderFrom", wantBody: size},
		{name: "chunked", h: chunked, path: "/big.bin",
			wantErr: "chunked: the response had no Content-Length, so it was chunked", wantCopy: middleware.CopyReasonChunked, wantBody: size},
		{name: "compressed", h: chimw.Compress(5, "application/octet-stream")(serve), path: "/big.bin", header: http.Header{"Accept-Encoding": {"gzip"}},
			wantErr: "compressed on the fly (Content-Encoding: gzip)", wantBody: -1},
		{name: "TLS", h: serve, path: "/big.bin", opts: []Option{WithTLS(false)},
			wantErr: "client_tls: TLS encrypts the body in user space", wantCopy: middleware.CopyReasonClientTLS, wantBody: size},
		{name: "HTTP/2", h: serve, path: "/big.bin", opts: []Option{WithTLS(true)},
			wantErr: "HTTP/2.0 frames the body itself", wantBody: size},
		{name: "small file", h: serve, path: "/small.bin",
			wantErr: "the body is 100 bytes; net/http writes up to 512 itself", wantCopy: middleware.CopyReasonSmallBody, wantBody: 100,
			wantReason: "small_body: the body is 100 bytes, and net/http writes up to 512 itself before it hands a file to sendfile: not a loss, but nothing to prove"},
		{name: "handlers behind a wrapper", h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { files.ServeHTTP(hider{w}, r) }), path: "/big.bin",
			wantErr:  "sendfile sent 0 of 1048576 body bytes (0%): no_readfrom: a ResponseWriter wrapper hides io.ReaderFrom: integration.hider from github.com/fastpath-go/fastpath/integration",
			wantCopy: middleware.CopyReasonNoReadFrom, wantWrapper: "integration.hider from github.com/fastpath-go/fastpath/integration", wantBody: size},
		{name: "handlers compressed", h: chimw.Compress(5, "application/octet-stream")(files), path: "/big.bin", header: http.Header{"Accept-Encoding": {"gzip"}},
			wantErr:  "encoded: a middleware compresses the body on the fly (Content-Encoding: gzip): *middleware.compressResponseWriter from github.com/go-chi/chi/v5/middleware",
			wantCopy: middleware.CopyReasonEncoded, wantWrapper: "*middleware.compressResponseWriter from github.com/go-chi/chi/v5/middleware", wantBody: -1},
		{name: "handlers over HTTP/2", h: files, path: "/big.bin", opts: []Option{WithTLS(true)},
			wantErr: "client_http2: HTTP/2 frames the body itself", wantCopy: middleware.CopyReasonClientHTTP2, wantBody: size},
		{name: "handlers single range", h: files, path: "/big.bin", header: http.Header{"Range": {"bytes=1000-200999"}},
			wantSendfile: 200000 - 512, wantBody: 200000},
		{name: "handlers multi-range", h: files, path: "/huge.bin", header: http.Header{"Range": {threeRanges}},
			wantSendfile: 2*999744 + 1000 - 512, wantBody: -1},
		{name: "handlers multi-range in the stack", h: middleware.Tracing()(middleware.Metrics()(middleware.Logger(quiet)(files))), path: "/huge.bin", header: http.Header{"Range": {threeRanges}},
			wantSendfile: 2*999744 + 1000 - 512, wantBody: -1},
		{name: "net/http multi-range", h: serve, path: "/huge.bin", header: http.Header{"Range": {threeRanges}},
			wantErr: "multirange: the multi-range response was copied through user space: http.ServeContent sends those through an io.Pipe", wantCopy: middleware.CopyReasonMultiRange, wantBody: -1},
		{name: "not found", h: files, path: "/missing.bin",
			wantErr: "integration: the handler answered 404 Not Found (a 19-byte body), so there was no file to send", wantBody: 19},
		{name: "method not allowed", h: files, path: "/big.bin", method: "DELETE",
			wantErr: "the handler answered 405 Method Not Allowed", wantBody: -1},
		{name: "redirect followed", h: moved, path: "/old.bin",
			wantSendfile: size - 512, wantBody: size},
		{name: "redirect not followed", h: moved, path: "/choices",
			wantErr:    `integration: the handler answered 300 Multiple Choices, a redirect to "/big.bin", so there was no file to send; request the file at the redirect's target`,
			wantReason: `the response is 300 Multiple Choices, a redirect to "/big.bin", not a file`, wantBody: 0},
		{name: "redirect without a target", h: moved, path: "/nowhere",
			wantErr:    "integration: the handler answered 307 Temporary Redirect, a redirect with no Location, so there was no file to send",
			wantReason: "the response is 307 Temporary Redirect, a redirect with no Location, not a file", wantBody: 0},
		{name: "not modified", h: serve, path: "/big.bin", header: http.Header{"If-Modified-Since": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}},
			wantErr:    "integration: the handler answered 304 Not Modified: the request's If-None-Match or If-Modified-Since matched, so there was no body to send; drop those headers",
			wantReason: "the response is 304 Not Modified: the client's copy is current, so no body was sent", wantBody: 0},
		{name: "not found reason", h: files, path: "/missing.bin",
			wantErr: "404 Not Found", wantReason: "the response is 404 Not Found, not a file", wantBody: 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, tt.path, nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			rep, err := CheckZeroCopy(tt.h, req, tt.opts...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if rep.SendfileBytes != tt.wantSendfile {
				t.Errorf("SendfileBytes = %d, want %d", rep.SendfileBytes, tt.wantSendfile)
			}
			if tt.wantBody >= 0 && rep.BodyBytes != tt.wantBody {
				t.Errorf("BodyBytes = %d, want %d", rep.BodyBytes, tt.wantBody)
			}
			if rep.KeptFastPath() != (tt.wantErr == "") {
				t.Errorf("KeptFastPath = %v", rep.KeptFastPath())
			}
			if (rep.Reason() == "") != rep.KeptFastPath() {
				t.Errorf("Reason = %q with KeptFastPath %v: want a reason exactly when the fast path was not kept", rep.Reason(), rep.KeptFastPath())
			}
			if rep.CopyReason != tt.wantCopy || rep.CopyWrapper != tt.wantWrapper {
				t.Errorf("CopyReason %q, CopyWrapper %q; want %q, %q", rep.CopyReason, rep.CopyWrapper, tt.wantCopy, tt.wantWrapper)
			}
			if tt.wantReason != "" && rep.Reason() != tt.wantReason {
				t.Errorf("Reason = %q, want %q", rep.Reason(), tt.wantReason)
			}
		})
	}
}

func TestAssertZeroCopyInChi(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteRandomFile(t, dir, "a.bin", 64<<10)
	r := chi.NewRouter()
	r.Use(middleware.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	r.Get("/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, chi.URLParam(r, "name")))
	})
	rep := AssertZeroCopy(t, r, httptest.NewRequest("GET", "/files/a.bin", nil))
	if rep.Status != 200 || rep.ZeroCopyShare() != float64(64<<10-512)/float64(64<<10) {
		t.Errorf("report %+v", rep)
	}
}
