package middleware

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

const fileSize = 4 << 20

// TestRecordStatusAndBytes checks the status and body size recorded for
// every way a handler can write, against the bytes the client received, over
// a real loopback connection, with and without Listener.
func TestRecordStatusAndBytes(t *testing.T) {
	path, data := writeTestFile(t, "blob.bin", fileSize)
	const notOverlap = "invalid range: failed to overlap\n"
	tests := []struct {
		name         string
		method       string
		header       http.Header
		handler      http.HandlerFunc
		wantStatus   int
		wantBody     int64
		wantSendfile int64 // with Listener
	}{
		{
			name:       "write",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) },
			wantStatus: 200, wantBody: 5,
		},
		{
			name:       "write string",
			handler:    func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello, world") },
			wantStatus: 200, wantBody: 12,
		},
		{
			name: "explicit status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte("created"))
			},
			wantStatus: 201, wantBody: 7,
		},
		{
			name:       "implicit 200 without body",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			wantStatus: 200, wantBody: 0,
		},
		{
			name: "informational then final",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusAccepted)
				w.Write([]byte("ok"))
			},
			wantStatus: 202, wantBody: 2,
		},
		{
			name: "second WriteHeader ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTeapot)
				w.WriteHeader(http.StatusOK)
			},
			wantStatus: 418, wantBody: 0,
		},
		{
			name: "flush commits 200",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.(http.Flusher).Flush()
				w.WriteHeader(http.StatusNotFound) // superfluous: already sent
				w.Write([]byte("x"))
			},
			wantStatus: 200, wantBody: 1,
		},
		{
			name:       "not found",
			handler:    http.NotFound,
			wantStatus: 404, wantBody: int64(len("404 page not found\n")),
		},
		{
			name:       "server error",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
			wantStatus: 500, wantBody: 5,
		},
		{
			name:       "file full",
			handler:    serveFile(t, path),
			wantStatus: 200, wantBody: fileSize, wantSendfile: fileSize - 512,
		},
		{
			name:       "file range",
			header:     http.Header{"Range": {"bytes=100-1099"}},
			handler:    serveFile(t, path),
			wantStatus: 206, wantBody: 1000, wantSendfile: 1000 - 512,
		},
		{
			name:       "file suffix range",
			header:     http.Header{"Range": {"bytes=-1048576"}},
			handler:    serveFile(t, path),
			wantStatus: 206, wantBody: 1 << 20, wantSendfile: 1<<20 - 512,
		},
		{
			name:       "file HEAD",
			method:     http.MethodHead,
			handler:    serveFile(t, path),
			wantStatus: 200, wantBody: 0,
		},
		{
			name:       "file not modified",
			header:     http.Header{"If-None-Match": {`"v1"`}},
			handler:    serveFile(t, path),
			wantStatus: 304, wantBody: 0,
		},
		{
			name:       "file range not satisfiable",
			header:     http.Header{"Range": {"bytes=5000000-"}},
			handler:    serveFile(t, path),
			wantStatus: 416, wantBody: int64(len(notOverlap)),
		},
		{
			name: "io.Copy of a file with Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				f, err := openFile(path)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				w.Header().Set("Content-Length", strconv.Itoa(fileSize))
				io.Copy(w, f) // os.File.WriteTo hands w.ReadFrom a wrapped file
			},
			wantStatus: 200, wantBody: fileSize, wantSendfile: fileSize - 512,
		},
		{
			name: "file without content length is chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				f, err := openFile(path)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				io.Copy(w, f)
			},
			wantStatus: 200, wantBody: fileSize, wantSendfile: 0,
		},
	}
	for _, zeroCopy := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/listener=%v", tt.name, zeroCopy), func(t *testing.T) {
				logs, l := newCapture()
				srv := startServer(t, Logger(l)(tt.handler), zeroCopy)
				method := tt.method
				if method == "" {
					method = http.MethodGet
				}
				req, _ := http.NewRequest(method, srv.URL+"/x", nil)
				for k, v := range tt.header {
					req.Header[k] = v
				}
				resp, body := do(t, srv.Client(), req)
				srv.Close()

				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("client got status %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				if method != http.MethodHead && int64(len(body)) != tt.wantBody {
					t.Fatalf("client got %d body bytes, want %d", len(body), tt.wantBody)
				}
				if tt.wantStatus == 200 && tt.wantBody == fileSize && string(body) != string(data) {
					t.Fatal("client got wrong file bytes")
				}
				e := logs.only(t)
				if got := e.Attrs["http.response.status_code"]; got != int64(tt.wantStatus) {
					t.Errorf("recorded status %v, want %d", got, tt.wantStatus)
				}
				if got := e.Attrs["http.response.body.size"]; got != tt.wantBody {
					t.Errorf("recorded body size %v, want %d", got, tt.wantBody)
				}
				got, ok := e.Attrs["fastpath.response.sendfile.size"]
				switch {
				case !zeroCopy && ok:
					t.Errorf("sendfile size %v recorded without Listener", got)
				case zeroCopy && got != tt.wantSendfile:
					t.Errorf("recorded sendfile size %v, want %d", got, tt.wantSendfile)
				}
				// Nothing here is proxied, so nothing is spliced.
				got, ok = e.Attrs["fastpath.response.splice.size"]
				switch {
				case !zeroCopy && ok:
					t.Errorf("splice size %v recorded without Listener", got)
				case zeroCopy && got != int64(0):
					t.Errorf("recorded splice size %v, want 0", got)
				}
				if _, ok := e.Attrs["error.type"]; ok != (tt.wantStatus >= 500) {
					t.Errorf("error.type = %v, want present only for 5xx", e.Attrs["error.type"])
				}
			})
		}
	}
}

// TestRecordDurations checks duration_ms and ttfb_ms exactly, as a JSON log
// line carries them, with a clock that advances one step per reading: the
// request starts at reading 1, the status is committed at reading 2 and the
// handler returns at reading 3.
func TestRecordDurations(t *testing.T) {
	for _, tc := range []struct {
		name string
		step time.Duration
		want string
	}{
		{"whole milliseconds", time.Millisecond, `"duration_ms":2,"ttfb_ms":1,`},
		{"fractions", 1500 * time.Microsecond, `"duration_ms":3,"ttfb_ms":1.5,`},
		{"nanoseconds", 77545 * time.Nanosecond, `"duration_ms":0.15509,"ttfb_ms":0.077545,`},
		{"a long download", 13 * time.Minute, `"duration_ms":1560000,"ttfb_ms":780000,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeClockStep(t, tc.step)
			var out bytes.Buffer
			h := Logger(slog.New(slog.NewJSONHandler(&out, nil)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK) // clock reading 2: first byte
				w.Write([]byte("body"))
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("log line %s\nlacks %s", out.String(), tc.want)
			}
		})
	}
}

// interfaceSet lists the optional interfaces w implements.
func interfaceSet(w http.ResponseWriter) []string {
	var s []string
	check := func(name string, ok bool) {
		if ok {
			s = append(s, name)
		}
	}
	_, ok := w.(http.Flusher)
	check("Flusher", ok)
	_, ok = w.(interface{ FlushError() error })
	check("FlushError", ok)
	_, ok = w.(http.Hijacker)
	check("Hijacker", ok)
	_, ok = w.(io.ReaderFrom)
	check("ReaderFrom", ok)
	_, ok = w.(io.StringWriter)
	check("StringWriter", ok)
	_, ok = w.(http.Pusher)
	check("Pusher", ok)
	_, ok = w.(http.CloseNotifier) //nolint:staticcheck // still part of the contract
	check("CloseNotifier", ok)
	_, ok = w.(interface{ SetWriteDeadline(time.Time) error })
	check("SetWriteDeadline", ok)
	_, ok = w.(interface{ EnableFullDuplex() error })
	check("EnableFullDuplex", ok)
	return s
}

// TestInterfacesPreserved checks that the wrapped ResponseWriter has exactly
// the optional interfaces of the one net/http (or a recorder) passed in, that
// http.ResponseController still reaches the connection, and that three
// chained middlewares wrap once.
func TestInterfacesPreserved(t *testing.T) {
	type seen struct {
		outer, inner []string
		unwrapped    string
		deadlineErr  error
		duplexErr    error
		flushErr     error
	}
	probe := func(got *seen) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.outer = interfaceSet(w)
				next.ServeHTTP(w, r)
			})
		}
	}
	inner := func(got *seen) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got.inner = interfaceSet(w)
			if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
				got.unwrapped = fmt.Sprintf("%T", u.Unwrap())
			}
			rc := http.NewResponseController(w)
			got.deadlineErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
			if r.ProtoMajor == 1 {
				got.duplexErr = rc.EnableFullDuplex()
			}
			w.Write([]byte("ok"))
			got.flushErr = rc.Flush()
		}
	}
	stack := func(got *seen) http.Handler {
		_, l := newCapture()
		return probe(got)(Tracing()(Metrics()(Logger(l)(inner(got)))))
	}
	tests := []struct {
		name          string
		run           func(t *testing.T, h http.Handler)
		wantSet       []string
		wantUnwrapped string
	}{
		{
			name: "HTTP/1.1",
			run: func(t *testing.T, h http.Handler) {
				srv := startServer(t, h, false)
				do(t, srv.Client(), mustRequest(t, "GET", srv.URL))
			},
			wantSet:       []string{"Flusher", "FlushError", "Hijacker", "ReaderFrom", "StringWriter", "CloseNotifier", "SetWriteDeadline", "EnableFullDuplex"},
			wantUnwrapped: "*http.response",
		},
		{
			name: "HTTP/2 over TLS",
			run: func(t *testing.T, h http.Handler) {
				srv := httptest.NewUnstartedServer(h)
				srv.EnableHTTP2 = true
				srv.StartTLS()
				t.Cleanup(srv.Close)
				resp, _ := do(t, srv.Client(), mustRequest(t, "GET", srv.URL))
				if resp.ProtoMajor != 2 {
					t.Fatalf("got HTTP/%d, want HTTP/2", resp.ProtoMajor)
				}
			},
			wantSet:       []string{"Flusher", "FlushError", "StringWriter", "Pusher", "CloseNotifier", "SetWriteDeadline", "EnableFullDuplex"},
			wantUnwrapped: "*http.http2responseWriter",
		},
		{
			name: "ResponseRecorder",
			run: func(t *testing.T, h http.Handler) {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			},
			wantSet:       []string{"Flusher", "StringWriter"},
			wantUnwrapped: "*httptest.ResponseRecorder",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got seen
			tt.run(t, stack(&got))
			if !slices.Equal(got.outer, tt.wantSet) {
				t.Fatalf("unwrapped writer has %v, want %v (test premise)", got.outer, tt.wantSet)
			}
			if !slices.Equal(got.inner, got.outer) {
				t.Errorf("wrapped writer has %v, want %v", got.inner, got.outer)
			}
			if got.unwrapped != tt.wantUnwrapped {
				t.Errorf("one Unwrap reaches %s, want %s: three middlewares must wrap once", got.unwrapped, tt.wantUnwrapped)
			}
			if tt.name != "ResponseRecorder" {
				if got.deadlineErr != nil || got.duplexErr != nil || got.flushErr != nil {
					t.Errorf("ResponseController: SetWriteDeadline=%v EnableFullDuplex=%v Flush=%v, want nil", got.deadlineErr, got.duplexErr, got.flushErr)
				}
			}
		})
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestPanic checks that a panic is recorded and re-raised unchanged to an
// outer recoverer.
func TestPanic(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		value         any
		wantStatus    int
		wantErrorType ErrorType
		wantException bool
	}{
		{
			name:       "before headers",
			handler:    func(w http.ResponseWriter, r *http.Request) { panic(errBoom) },
			value:      errBoom,
			wantStatus: 500, wantErrorType: "panic", wantException: true,
		},
		{
			name: "after headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				w.Write([]byte("partial"))
				w.(http.Flusher).Flush()
				panic(errBoom)
			},
			value:      errBoom,
			wantStatus: 200, wantErrorType: "panic", wantException: true,
		},
		{
			name:       "ErrAbortHandler",
			handler:    func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
			value:      http.ErrAbortHandler,
			wantStatus: 500, wantErrorType: ErrorTypeHandlerAborted, wantException: false, // a deliberate abort, not a bug
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, l := newCapture()
			recovered := make(chan any, 1)
			outer := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					defer func() {
						v := recover()
						recovered <- v
						if v == http.ErrAbortHandler {
							panic(v)
						}
					}()
					next.ServeHTTP(w, r)
				})
			}
			srv := startServer(t, outer(Logger(l)(Logger(l)(tt.handler))), false)
			resp, err := srv.Client().Get(srv.URL)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			srv.Close()
			if got := <-recovered; got != tt.value {
				t.Fatalf("outer recoverer got %v, want %v unchanged", got, tt.value)
			}
			all := logs.all()
			if len(all) != 2 {
				t.Fatalf("got %d records, want one per Logger", len(all))
			}
			for _, e := range all {
				if got := e.Attrs["http.response.status_code"]; got != int64(tt.wantStatus) {
					t.Errorf("status = %v, want %d", got, tt.wantStatus)
				}
				if got := e.Attrs["error.type"]; got != string(tt.wantErrorType) {
					t.Errorf("error.type = %v, want %s", got, tt.wantErrorType)
				}
				if got, ok := e.Attrs["exception.message"]; ok != tt.wantException || (ok && got != fmt.Sprint(tt.value)) {
					t.Errorf("exception.message = %v, want %v (present: %v)", got, tt.value, tt.wantException)
				}
				if e.Level != slogLevelError {
					t.Errorf("level = %v, want ERROR", e.Level)
				}
			}
		})
	}
}

// TestClientAbort checks that a client going away mid-response is recorded
// as client_aborted at Info, with the bytes that did get out; that a client
// closing the connection after receiving the whole body is not; and that a
// body short of its Content-Length through the handler's doing is the
// server's error.
func TestClientAbort(t *testing.T) {
	path, _ := writeTestFile(t, "big.bin", 64<<20)
	// complete serves a whole body, then waits for the client to leave.
	complete := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hello"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		read      int64 // body bytes the client reads before closing
		wantError ErrorType
		wantLevel slog.Level
		wantBody  int64 // -1: at least read, less than the file
	}{
		{name: "during sendfile", handler: serveFile(t, path), read: 1 << 20, wantError: ErrorTypeClientAborted, wantLevel: slog.LevelInfo, wantBody: -1},
		{
			name: "while handler waits",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			wantError: ErrorTypeClientAborted, wantLevel: slog.LevelInfo,
		},
		{
			name: "short of Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				w.Write([]byte("hello"))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			read: 5, wantError: ErrorTypeClientAborted, wantLevel: slog.LevelInfo, wantBody: 5,
		},
		{name: "after the whole body", handler: complete, read: 5, wantLevel: slog.LevelInfo, wantBody: 5},
		{
			name: "body shorter than Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				w.Write([]byte("hello")) // and return: net/http closes the connection
			},
			read: 5, wantError: ErrorTypeShortBody, wantLevel: slog.LevelError, wantBody: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, l := newCapture()
			srv := startServer(t, Logger(l)(tt.handler), true)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(io.Discard, resp.Body, tt.read); err != nil {
				t.Fatal(err)
			}
			conn.(*net.TCPConn).SetLinger(0) // reset, so the server sees it at once
			conn.Close()
			srv.Close()

			e := logs.only(t)
			if got, _ := e.Attrs["error.type"].(string); got != string(tt.wantError) {
				t.Errorf("error.type = %q, want %q", got, tt.wantError)
			}
			if got := e.Attrs["http.response.status_code"]; got != int64(200) {
				t.Errorf("status = %v, want 200", got)
			}
			body := e.Attrs["http.response.body.size"].(int64)
			if tt.wantBody >= 0 && body != tt.wantBody {
				t.Errorf("body size = %d, want %d", body, tt.wantBody)
			}
			if tt.wantBody < 0 && (body < tt.read || body >= 64<<20) {
				t.Errorf("body size = %d, want the bytes that got out: at least the %d read and less than the file", body, tt.read)
			}
			if e.Level != tt.wantLevel {
				t.Errorf("level = %v, want %v", e.Level, tt.wantLevel)
			}
		})
	}
}

// TestHijack checks that a hijacked connection reports no made-up status,
// and 101 when the handler sent it through WriteHeader.
func TestHijack(t *testing.T) {
	tests := []struct {
		name       string
		send101    bool
		wantStatus any // nil: key absent
	}{
		{name: "raw upgrade", send101: false, wantStatus: nil},
		{name: "WriteHeader(101)", send101: true, wantStatus: int64(101)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, l := newCapture()
			h := Logger(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.send101 {
					w.Header().Set("Connection", "Upgrade")
					w.Header().Set("Upgrade", "test")
					w.WriteHeader(http.StatusSwitchingProtocols)
				}
				c, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				if !tt.send101 {
					brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
				}
				brw.WriteString("hello")
				brw.Flush()
			}))
			// httptest stops tracking a connection once it is hijacked, so
			// wait for the handler chain itself.
			done := make(chan struct{})
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(done)
				h.ServeHTTP(w, r)
			}), true)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 {
				t.Fatalf("client got %d, want 101", resp.StatusCode)
			}
			<-done
			e := logs.only(t)
			if got := e.Attrs["http.response.status_code"]; got != tt.wantStatus {
				t.Errorf("status = %v, want %v", got, tt.wantStatus)
			}
			if got := e.Attrs["fastpath.hijacked"]; got != true {
				t.Errorf("fastpath.hijacked = %v, want true", got)
			}
			if got := e.Attrs["http.response.body.size"]; got != int64(0) {
				t.Errorf("body size = %v, want 0 (bytes on a hijacked connection are not the response body)", got)
			}
		})
	}
}

// TestRoute checks the recorded route for chi (both placements) and
// ServeMux (both placements), and that raw paths never become routes.
func TestRoute(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	tests := []struct {
		name      string
		build     func(mw func(http.Handler) http.Handler) http.Handler
		path      string
		wantRoute any // nil: absent
	}{
		{
			name: "chi, mounted with Use",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				r := chi.NewRouter()
				r.Use(mw)
				r.Get("/users/{id}", ok)
				return r
			},
			path: "/users/42", wantRoute: "/users/{id}",
		},
		{
			name: "chi, wrapped from outside",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				r := chi.NewRouter()
				r.Get("/users/{id}", ok)
				return mw(r)
			},
			path: "/users/42", wantRoute: "/users/{id}",
		},
		{
			name: "chi, sub-router",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				r := chi.NewRouter()
				r.Route("/api", func(r chi.Router) {
					r.Get("/items/{id}/parts/*", ok)
				})
				return mw(r)
			},
			path: "/api/items/7/parts/a/b", wantRoute: "/api/items/{id}/parts/*",
		},
		{
			name: "chi, not found",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				r := chi.NewRouter()
				r.Use(mw)
				r.Get("/users/{id}", ok)
				return r
			},
			path: "/random/8f3a2c", wantRoute: nil,
		},
		{
			name: "ServeMux, wrapped from outside",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				mux := http.NewServeMux()
				mux.HandleFunc("GET /users/{id}", ok)
				return mw(mux)
			},
			path: "/users/42", wantRoute: "/users/{id}",
		},
		{
			name: "ServeMux, per handler",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				mux := http.NewServeMux()
				mux.Handle("example.test/files/{name...}", mw(http.HandlerFunc(ok)))
				return mux
			},
			path: "/files/a/b.txt", wantRoute: "/files/{name...}",
		},
		{
			name: "ServeMux, not found",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				mux := http.NewServeMux()
				mux.HandleFunc("GET /users/{id}", ok)
				return mw(mux)
			},
			path: "/random/8f3a2c", wantRoute: nil,
		},
		{
			name: "plain handler",
			build: func(mw func(http.Handler) http.Handler) http.Handler {
				return mw(http.HandlerFunc(ok))
			},
			path: "/random/8f3a2c", wantRoute: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, l := newCapture()
			srv := startServer(t, tt.build(Logger(l)), false)
			req := mustRequest(t, "GET", srv.URL+tt.path)
			req.Host = "example.test"
			do(t, srv.Client(), req)
			srv.Close()
			e := logs.only(t)
			if got := e.Attrs["http.route"]; got != tt.wantRoute {
				t.Errorf("http.route = %v, want %v", got, tt.wantRoute)
			}
			if got := e.Attrs["url.path"]; got != tt.path {
				t.Errorf("url.path = %v, want %s", got, tt.path)
			}
		})
	}
}

// TestChiOutsideKeepsGetHead checks that the routing context supplied from
// outside a chi router is a complete one: chi's GetHead middleware uses it.
func TestChiOutsideKeepsGetHead(t *testing.T) {
	logs, l := newCapture()
	r := chi.NewRouter()
	r.Use(chiGetHead)
	r.Get("/a", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("body")) })
	srv := startServer(t, Logger(l)(r), false)
	resp, _ := do(t, srv.Client(), mustRequest(t, "HEAD", srv.URL+"/a"))
	srv.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HEAD got %d, want 200", resp.StatusCode)
	}
	e := logs.only(t)
	if got := e.Attrs["http.route"]; got != "/a" {
		t.Errorf("http.route = %v, want /a", got)
	}
	if got := e.Attrs["http.response.body.size"]; got != int64(0) {
		t.Errorf("HEAD body size = %v, want 0", got)
	}
}

// TestRequestBodySize checks that request body bytes the handler reads are
// counted, without Logger reading the body itself.
func TestRequestBodySize(t *testing.T) {
	tests := []struct {
		name string
		read int64
		want any
	}{
		{name: "read all", read: -1, want: int64(11)},
		{name: "read part", read: 4, want: int64(4)},
		{name: "not read", read: 0, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, l := newCapture()
			srv := startServer(t, Logger(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.read < 0 {
					io.Copy(io.Discard, r.Body)
				} else {
					io.CopyN(io.Discard, r.Body, tt.read)
				}
			})), false)
			resp, err := srv.Client().Post(srv.URL, "text/plain", strings.NewReader("hello world"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			srv.Close()
			if got := logs.only(t).Attrs["http.request.body.size"]; got != tt.want {
				t.Errorf("http.request.body.size = %v, want %v", got, tt.want)
			}
		})
	}
}

var _ = context.Background
var _ = tls.VersionTLS12
