package middleware

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/internal/connreg"
	"github.com/fastpath-go/fastpath/internal/copynote"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/ktls"
)

// now is the clock; tests replace it to check durations exactly.
var now = time.Now

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
	span  trace.SpanContext          // the server span Tracing started, if any
	extra atomic.Pointer[extraAttrs] // what SetAttributes added; nil until it is called

	conn      *zerocopy.Conn // nil when the connection was not accepted by Listener
	ktls      *ktlsConn      // nil unless the connection was accepted by ktls.NewListener
	sendfile0 int64          // conn's sendfile count when the request started
	splice0   int64          // conn's splice count when the request started

	rw       http.ResponseWriter // the writer wrapped, for its final header
	own      http.ResponseWriter // the wrapper handed on
	declared int64               // the Content-Length the handler declared, or -1

	w recordWriter // the wrapper of an HTTP/1 writer (see wrap)

	cp copyState // why the body was copied, if it was

	spanArgs spanArgs // Tracing's, here so they cost no allocation of their own
}

var _ copynote.Recorder = (*record)(nil)

// begin returns the request's record and the context to pass on, making the
// record and wrapping w when no fastpath middleware has done so yet (created
// reports that). routes is the next handler when it is a chi router (see
// routeContext).
func begin(w http.ResponseWriter, r *http.Request, routes chi.Routes) (rec *record, _ http.ResponseWriter, _ context.Context, created bool) {
	ctx := r.Context()
	rec, _ = ctx.Value(copynote.Key{}).(*record)
	if rec == nil {
		created = true
		rec = &record{start: now(), head: r.Method == http.MethodHead}
		rec.connect(r, connreg.FromContext(ctx))
		// net/http sets r.TLS for any connection with a ConnectionState
		// method, a kernel TLS one included when it is the outermost; that
		// one is not encrypted in user space and sends files by sendfile.
		rec.cp.userTLS = r.TLS != nil && (rec.ktls == nil || !rec.ktls.Kernel)
		rec.cp.http2 = r.ProtoMajor == 2
		rec.rw = w
		w = rec.wrap(w)
		rec.own = w
		// Under copynote's key, so fastpath's handlers can tell it why
		// they copied a body.
		ctx = context.WithValue(ctx, copynote.Key{}, rec)
	}
	return rec, w, routeContext(ctx, routes), created
}

// connect finds what the record needs of the connection c the request
// arrived on (the outermost one registered in internal/connreg, nil when
// none is): Listener's counting Conn, and what ktls.NewListener did with the
// connection, with the TLS session of a kernel TLS one, which net/http does
// not see (it sets r.TLS only for a *tls.Conn).
func (rec *record) connect(r *http.Request, c net.Conn) {
	if c == nil {
		return
	}
	if zc, ok := connreg.Find[*zerocopy.Conn](c); ok {
		rec.conn = zc
		rec.sendfile0 = zc.Sendfile()
		rec.splice0 = zc.Splice()
	}
	if st, ok := ktls.StateOf(c); ok {
		rec.ktls = &ktlsConn{State: st}
		if kc, ok := connreg.Find[*ktls.Conn](c); ok && r.TLS == nil {
			rec.ktls.cs = kc.ConnectionState()
			rec.ktls.fill = true
		}
	}
}

// ktlsConn is what ktls.NewListener did with a request's connection, kept
// apart from the record so that other connections do not carry its size.
type ktlsConn struct {
	ktls.State
	fill bool                // r.TLS is to be cs: net/http did not set it
	cs   tls.ConnectionState // the session of a kernel TLS connection
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

// recovered records a panic value from recover(); nil means runtime.Goexit.
func (rec *record) recovered(v any) {
	if !rec.panicked {
		rec.panicked = true
		rec.panicVal = v
	}
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
// that is unknown because the connection was not accepted by Listener; over
// TLS in user space it is 0, known, either way.
func (rec *record) sendfile() (int64, bool) {
	if rec.conn == nil {
		// crypto/tls encrypts in user space: nothing goes by sendfile,
		// whether or not the counting Conn is below it.
		return 0, rec.cp.userTLS
	}
	return rec.conn.Sendfile() - rec.sendfile0, true
}

// splice returns the bytes splice(2) moved to the client for this request,
// and false when that is unknown because the connection was not accepted by
// Listener.
func (rec *record) splice() (int64, bool) {
	if rec.conn == nil {
		return 0, rec.cp.userTLS // as for sendfile
	}
	return rec.conn.Splice() - rec.splice0, true
}

// countingBody counts, into the record, the request body bytes the handler
// reads.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
