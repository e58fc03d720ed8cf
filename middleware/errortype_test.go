package middleware

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
)

// TestErrorTypes checks, for each way a response can end badly, the
// error.type, the default log level, the duration metric's error.type and
// the span status, over a real loopback connection.
func TestErrorTypes(t *testing.T) {
	path, _ := writeTestFile(t, "big.bin", 64<<20)
	// started is closed by handlers that must be writing before the test
	// acts on the connection.
	tests := []struct {
		name    string
		handler func(started chan<- struct{}) http.HandlerFunc
		// client reads the response on conn and does what the case needs;
		// it returns once the handler may finish.
		client     func(t *testing.T, srv *httptest.Server, conn net.Conn, started <-chan struct{})
		wantStatus int64
		wantType   ErrorType
		wantLevel  slog.Level
		wantSpan   codes.Code
		wantDesc   string
	}{
		{
			name: "send timeout",
			handler: func(chan<- struct{}) http.HandlerFunc {
				file := serveFile(t, path)
				return func(w http.ResponseWriter, r *http.Request) {
					// The client never reads, so the write blocks and
					// misses this deadline however fast the machine is.
					http.NewResponseController(w).SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					file(w, r)
				}
			},
			client:     readNothing,
			wantStatus: 200, wantType: ErrorTypeSendTimeout, wantLevel: slog.LevelWarn,
			wantSpan: codes.Error, wantDesc: "send timeout: the client stopped reading",
		},
		{
			name: "server closes the connection",
			handler: func(started chan<- struct{}) http.HandlerFunc {
				file := serveFile(t, path)
				return func(w http.ResponseWriter, r *http.Request) {
					close(started)
					file(w, r)
				}
			},
			client: func(t *testing.T, srv *httptest.Server, conn net.Conn, started <-chan struct{}) {
				<-started
				srv.CloseClientConnections()
			},
			wantStatus: 200, wantType: ErrorTypeWriteError, wantLevel: slog.LevelError,
			wantSpan: codes.Error, wantDesc: "writing the response failed",
		},
		{
			name:    "client resets mid-body",
			handler: func(chan<- struct{}) http.HandlerFunc { return serveFile(t, path) },
			client: func(t *testing.T, srv *httptest.Server, conn net.Conn, _ <-chan struct{}) {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
					t.Fatal(err)
				}
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			},
			wantStatus: 200, wantType: ErrorTypeClientAborted, wantLevel: slog.LevelInfo,
			wantSpan: codes.Unset,
		},
		{
			name: "body short of Content-Length",
			handler: func(chan<- struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "10")
					io.WriteString(w, "hello")
				}
			},
			client:     readAll,
			wantStatus: 200, wantType: ErrorTypeShortBody, wantLevel: slog.LevelError,
			wantSpan: codes.Error, wantDesc: "response body shorter than its Content-Length",
		},
		{
			name: "handler aborts after the headers",
			handler: func(chan<- struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "10")
					io.WriteString(w, "hello")
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
			},
			client:     readAll,
			wantStatus: 200, wantType: ErrorTypeHandlerAborted, wantLevel: slog.LevelError,
			wantSpan: codes.Error, wantDesc: "the handler aborted the response",
		},
		{
			name: "panic",
			handler: func(chan<- struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { panic("boom") }
			},
			client:     readAll,
			wantStatus: 500, wantType: ErrorTypePanic, wantLevel: slog.LevelError,
			wantSpan: codes.Error, wantDesc: "boom",
		},
		{
			name: "503",
			handler: func(chan<- struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) }
			},
			client:     readAll,
			wantStatus: 503, wantType: "503", wantLevel: slog.LevelError,
			wantSpan: codes.Error,
		},
		{
			name: "404",
			handler: func(chan<- struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
			},
			client:     readAll,
			wantStatus: 404, wantLevel: slog.LevelWarn,
			wantSpan: codes.Unset,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			logs, l := newCapture()
			started := make(chan struct{})
			done := make(chan struct{})
			stack := Tracing(WithTracerProvider(tel.tp), WithPropagators(propagation.TraceContext{}))(
				Metrics(WithMeterProvider(tel.mp))(Logger(l)(tt.handler(started))))
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(done)
				stack.ServeHTTP(w, r)
			})
			srv := httptest.NewUnstartedServer(h)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the panic's stack trace
			srv.Start()
			defer srv.Close()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
			tt.client(t, srv, conn, started)
			<-done

			e := logs.only(t)
			if got, _ := e.Attrs["error.type"].(string); got != string(tt.wantType) {
				t.Errorf("log error.type %q, want %q", got, tt.wantType)
			}
			if e.Level != tt.wantLevel {
				t.Errorf("log level %v, want %v", e.Level, tt.wantLevel)
			}
			if got := e.Attrs["http.response.status_code"]; got != tt.wantStatus {
				t.Errorf("log status %v, want %d", got, tt.wantStatus)
			}
			var metricType []string
			for set := range histogramPoints(t, tel.collect(t)["http.server.request.duration"]) {
				metricType = append(metricType, set)
			}
			wantSet := fmt.Sprintf("http.request.method=GET http.response.status_code=%d network.protocol.version=1.1 url.scheme=http", tt.wantStatus)
			if tt.wantType != "" {
				wantSet = "error.type=" + string(tt.wantType) + " " + wantSet
			}
			if len(metricType) != 1 || metricType[0] != wantSet {
				t.Errorf("duration metric attributes %v, want [%s]", metricType, wantSet)
			}
			sp := tel.spans.GetSpans()[0]
			if sp.Status.Code != tt.wantSpan || sp.Status.Description != tt.wantDesc {
				t.Errorf("span status %v %q, want %v %q", sp.Status.Code, sp.Status.Description, tt.wantSpan, tt.wantDesc)
			}
		})
	}
}

// readNothing leaves the response unread until the handler has given up.
func readNothing(*testing.T, *httptest.Server, net.Conn, <-chan struct{}) {}

// readAll reads the connection until the server closes it or the response
// is complete.
func readAll(t *testing.T, _ *httptest.Server, conn net.Conn, _ <-chan struct{}) {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // the server may close it without a response (a panic)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestErrorTypeOfStatus checks the ErrorType of a response that completed:
// none below 500, and the decimal status code from 500 on, for the codes
// net/http names and for those it does not.
func TestErrorTypeOfStatus(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   ErrorType
	}{
		{"200", 200, ""},
		{"404", 404, ""},
		{"499, unnamed", 499, ""},
		{"500", 500, "500"},
		{"503", 503, "503"},
		{"599, unnamed", 599, "599"},
		{"600, unnamed", 600, "600"},
		{"999, the largest net/http sends", 999, "999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &record{code: tt.status, headerSent: true, declared: -1}
			if got := rec.errorType(); got != tt.want {
				t.Errorf("errorType() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDefaultLevel checks the default level for each status and error.type.
func TestDefaultLevel(t *testing.T) {
	tests := []struct {
		status  int
		errType ErrorType
		want    slog.Level
	}{
		{200, "", slog.LevelInfo},
		{206, "", slog.LevelInfo},
		{304, "", slog.LevelInfo},
		{0, "", slog.LevelInfo}, // hijacked
		{404, "", slog.LevelWarn},
		{416, "", slog.LevelWarn},
		{500, "500", slog.LevelError},
		{503, "503", slog.LevelError},
		{200, ErrorTypeClientAborted, slog.LevelInfo},
		{206, ErrorTypeClientAborted, slog.LevelInfo},
		{502, ErrorTypeClientAborted, slog.LevelError}, // the 5xx was sent before the client left
		{200, ErrorTypeSendTimeout, slog.LevelWarn},
		{200, ErrorTypeWriteError, slog.LevelError},
		{200, ErrorTypeShortBody, slog.LevelError},
		{200, ErrorTypeHandlerAborted, slog.LevelError},
		{500, ErrorTypePanic, slog.LevelError},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.status, tt.errType), func(t *testing.T) {
			if got := defaultLevel(tt.status, tt.errType); got != tt.want {
				t.Errorf("defaultLevel(%d, %q) = %v, want %v", tt.status, tt.errType, got, tt.want)
			}
		})
	}
}

// TestWithLevel checks that WithLevel decides the level from the status and
// error.type the record has, and that a level the logger does not enable
// writes nothing.
func TestWithLevel(t *testing.T) {
	type call struct {
		status  int
		errType ErrorType
	}
	var calls []call
	level := WithLevel(func(status int, errType ErrorType) slog.Level {
		calls = append(calls, call{status, errType})
		if errType != "" {
			return slog.LevelDebug // below the capture's Info: dropped
		}
		return slog.LevelWarn
	})
	logs := &logCapture{leveled: true, minLevel: slog.LevelInfo}
	h := Logger(slog.New(logs), level)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/ok", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/fail", nil))
	want := []call{{200, ""}, {503, "503"}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("level function called with %v, want %v", calls, want)
	}
	all := logs.all()
	if len(all) != 1 || all[0].Level != slog.LevelWarn || all[0].Attrs["url.path"] != "/ok" {
		t.Errorf("records %v, want the /ok one at WARN only", all)
	}
}
