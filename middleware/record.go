package middleware

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
)

// now is the clock; tests replace it to check durations exactly.
var now = time.Now

// recordKey is the context key of the request's *record.
type recordKey struct{}

// record is what fastpath observed of one request. The first fastpath
// middleware on a request makes it and wraps the ResponseWriter once; the
// others find it in the request context and read it.
//
// The ResponseWriter hooks and the middlewares run on the handler's
// goroutine, or at least never at the same time as each other (net/http
// forbids concurrent use of a ResponseWriter), so the fields need no
// locking; the request body may be read from another goroutine in
// full-duplex handlers, hence the atomic counter.
type record struct {
	start     time.Time
	end       time.Time // set when the first middleware sees its handler return
	firstByte time.Time // when the final status was committed

	code       int  // final (non-1xx) status; 0 until committed
	headerSent bool // status committed, explicitly or by a body write or Flush
	head       bool // HEAD request: net/http discards body writes
	body       int64
	reqBody    atomic.Int64
	writeErr   error
	hijacked   bool
	clientGone bool

	panicked bool
	panicVal any // nil with panicked set means runtime.Goexit

	route string
	span  trace.SpanContext // the server span Tracing started, if any

	conn      *zerocopy.Conn // nil when the connection was not accepted by Listener
	sendfile0 int64          // conn's sendfile count when the request started
	splice0   int64          // conn's splice count when the request started

	rw       http.ResponseWriter // the writer wrapped, for its final header
	declared int64               // the Content-Length the handler declared, or -1

	w recordWriter // the wrapper of an HTTP/1 writer (see wrap)

	// Tracing's arguments to the span, kept here rather than on its stack,
	// from which they would escape to the heap anyway.
	spanEnd     [8]attribute.KeyValue // the attributes set as the span ends (at most 8)
	spanOpts    [3]trace.SpanStartOption
	spanEndOpts [1]trace.SpanEndOption
}

// begin returns the request's record and the context to pass on, making the
// record and wrapping w when no fastpath middleware has done so yet (created
// reports that). When routes is not nil (the next handler is a chi router)
// and the request has no chi routing context yet, begin supplies one, so the
// route pattern chi matches is visible here after the router returns.
func begin(w http.ResponseWriter, r *http.Request, routes chi.Routes) (rec *record, _ http.ResponseWriter, _ context.Context, created bool) {
	ctx := r.Context()
	rec, _ = ctx.Value(recordKey{}).(*record)
	if rec == nil {
		created = true
		rec = &record{start: now(), head: r.Method == http.MethodHead}
		if c := zerocopy.FromContext(ctx); c != nil {
			rec.conn = c
			rec.sendfile0 = c.Sendfile()
			rec.splice0 = c.Splice()
		}
		rec.rw = w
		w = rec.wrap(w)
		ctx = context.WithValue(ctx, recordKey{}, rec)
	}
	if routes != nil && chi.RouteContext(ctx) == nil {
		rctx := chi.NewRouteContext()
		rctx.Routes = routes
		ctx = context.WithValue(ctx, chi.RouteCtxKey, rctx)
	}
	return rec, w, ctx, created
}

func (rec *record) hooks() httpsnoop.Hooks {
	return httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				next(code)
				rec.commit(code)
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(p []byte) (int, error) {
				n, err := next(p)
				rec.wrote(int64(n), err)
				return n, err
			}
		},
		WriteString: func(next httpsnoop.WriteStringFunc) httpsnoop.WriteStringFunc {
			return func(s string) (int, error) {
				n, err := next(s)
				rec.wrote(int64(n), err)
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				n, err := next(src)
				rec.wrote(n, err)
				return n, err
			}
		},
		Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
			return func() {
				next()
				rec.commit(http.StatusOK)
			}
		},
		Hijack: func(next httpsnoop.HijackFunc) httpsnoop.HijackFunc {
			return func() (net.Conn, *bufio.ReadWriter, error) {
				c, rw, err := next()
				if err == nil {
					rec.hijacked = true
				}
				return c, rw, err
			}
		},
	}
}

// commit records the final status: the first non-1xx WriteHeader, or the
// implicit 200 of a body write or Flush. 101 Switching Protocols is final, as
// net/http treats it.
func (rec *record) commit(code int) {
	if rec.headerSent || rec.hijacked || (code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols) {
		return
	}
	rec.code = code
	rec.headerSent = true
	rec.firstByte = now()
}

// wrote records a body write of n bytes that returned err.
func (rec *record) wrote(n int64, err error) {
	if rec.hijacked {
		return
	}
	rec.commit(http.StatusOK)
	if !rec.head { // net/http discards the body of a HEAD response
		rec.body += n
	}
	if err != nil && rec.writeErr == nil && !errors.Is(err, http.ErrBodyNotAllowed) {
		rec.writeErr = err
	}
}

// finish is called by every fastpath middleware when its next handler has
// returned or panicked. passed is the request it handed down (the router sets
// the route on it); ctx is the request context it received (net/http cancels
// it when the client goes away); cfg is the middleware's configuration.
func (rec *record) finish(passed *http.Request, ctx context.Context, cfg *config) {
	if rec.end.IsZero() {
		rec.end = now()
		rec.declared = -1
		// ParseInt's error for "" would be an allocation per request.
		if v := rec.rw.Header().Get("Content-Length"); v != "" {
			if cl, err := strconv.ParseInt(v, 10, 64); err == nil && cl >= 0 {
				rec.declared = cl
			}
		}
	}
	if rec.route == "" {
		rec.route = cfg.routeOf(passed)
	}
	if !rec.clientGone && errors.Is(ctx.Err(), context.Canceled) && !rec.complete() {
		rec.clientGone = true
	}
}

// complete reports whether the handler wrote the whole body it declared with
// Content-Length. Such a response can reach the client before the handler
// returns (sendfile flushes it), and clients such as curl close the
// connection at once, canceling the request context: that is not an abort.
func (rec *record) complete() bool {
	return rec.declared >= 0 && rec.body >= rec.declared && !rec.head
}

// short reports a body that ended before the Content-Length it declared: a
// file truncated while it was sent, say. net/http then closes the
// connection, and the client sees the response cut off.
func (rec *record) short() bool {
	if rec.declared < 0 || rec.head || rec.hijacked || rec.body >= rec.declared {
		return false
	}
	s := rec.status()
	return s >= 200 && s != http.StatusNoContent && s != http.StatusNotModified
}

// recovered records a panic value from recover(); nil means runtime.Goexit.
func (rec *record) recovered(v any) {
	if !rec.panicked {
		rec.panicked = true
		rec.panicVal = v
	}
}

// routeOf returns the route pattern that served r: chi's, when a chi routing
// context is present, else the path part of the ServeMux pattern net/http set
// on r. It never returns the raw path.
func routeOf(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && len(rctx.RoutePatterns) > 0 {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return patternPath(r.Pattern)
}

// patternPath returns the path of a ServeMux pattern "[METHOD ][HOST]/PATH":
// http.route is a path template, and the method and host have their own
// attributes.
func patternPath(p string) string {
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}

// status returns the final status: the one the handler sent, 200 when it sent
// none and returned, 500 when it panicked before sending one, and 0 when no
// status can be observed (a hijacked connection that did not use
// WriteHeader(101)).
func (rec *record) status() int {
	switch {
	case rec.code != 0:
		return rec.code
	case rec.hijacked:
		return 0
	case rec.panicked:
		return http.StatusInternalServerError
	default:
		return http.StatusOK
	}
}

// abortPanic reports a deliberate abort rather than a bug.
func (rec *record) abortPanic() bool {
	if !rec.panicked {
		return false
	}
	if rec.panicVal == nil {
		return true // runtime.Goexit
	}
	err, ok := rec.panicVal.(error)
	return ok && errors.Is(err, http.ErrAbortHandler)
}

// errorType returns the OpenTelemetry error.type of the request: "" for a
// response that completed, the status code of a 5xx, or an ErrorType value
// for an aborted response (see "Status, aborts, hijacks and panics" in the
// package documentation). The order matters where several causes meet: a
// deadline or a connection the server closed names its cause exactly, a
// client that left explains the failures that follow, and a deliberate abort
// (httputil.ReverseProxy's, when its upstream fails) or a short body is what
// remains.
func (rec *record) errorType() string {
	switch {
	case rec.panicked && !rec.abortPanic():
		return ErrorTypePanic
	case rec.writeErr != nil && errors.Is(rec.writeErr, os.ErrDeadlineExceeded):
		return ErrorTypeSendTimeout
	case rec.writeErr != nil && errors.Is(rec.writeErr, net.ErrClosed):
		// The server closed the connection (at shutdown, say), which
		// also cancels the request context: not the client's doing.
		return ErrorTypeWriteError
	case rec.clientGone || (rec.writeErr != nil && peerGone(rec.writeErr)):
		return ErrorTypeClientAborted
	case rec.writeErr != nil:
		return ErrorTypeWriteError
	case rec.abortPanic():
		return ErrorTypeHandlerAborted
	case rec.short():
		return ErrorTypeShortBody
	}
	if s := rec.status(); s >= 500 {
		return statusText(s)
	}
	return ""
}

// peerGone reports a write error that means the client closed or reset the
// connection, or the network lost it.
func peerGone(err error) bool {
	for _, e := range [...]error{syscall.EPIPE, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// serverFault reports whether errType is the server's concern rather than
// the client's: everything but a client that left.
func serverFault(errType string) bool {
	return errType != "" && errType != ErrorTypeClientAborted
}

// duration returns the time from the request's start to the handler's return.
func (rec *record) duration() time.Duration { return rec.end.Sub(rec.start) }

// ttfb returns the time to the final status being committed, or 0.
func (rec *record) ttfb() time.Duration {
	if rec.firstByte.IsZero() {
		return 0
	}
	return rec.firstByte.Sub(rec.start)
}

// sendfile returns the bytes sendfile(2) sent for this request, and false when
// that is unknown because the connection was not accepted by Listener.
func (rec *record) sendfile() (int64, bool) {
	if rec.conn == nil {
		return 0, false
	}
	return rec.conn.Sendfile() - rec.sendfile0, true
}

// splice returns the bytes splice(2) moved to the client for this request,
// and false when that is unknown because the connection was not accepted by
// Listener.
func (rec *record) splice() (int64, bool) {
	if rec.conn == nil {
		return 0, false
	}
	return rec.conn.Splice() - rec.splice0, true
}

// statusText returns the decimal form of a status code, without allocating
// for the common ones.
func statusText(code int) string {
	if code >= 100 && code < 600 {
		if s := statusStrings[code-100]; s != "" {
			return s
		}
	}
	return strconv.Itoa(code)
}

var statusStrings = func() (s [500]string) {
	for code := 100; code < 600; code++ {
		if http.StatusText(code) != "" {
			s[code-100] = strconv.Itoa(code)
		}
	}
	return s
}()

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
