package handlers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ProxyTransport is the HTTP/1.1 client [ReverseProxy] uses for plain-http
// upstreams, so that a response body with a Content-Length can go from the
// upstream socket to the client socket by splice(2). Give one as the
// httputil.ReverseProxy's Transport to tune it; a nil Transport means a
// shared ProxyTransport with the zero configuration.
//
// It pools connections as http.Transport does: keep-alive, at most
// MaxIdleConnsPerHost idle connections per host and port, closed after
// IdleConnTimeout, dials and waits for response headers bounded by the
// request's context. A connection is reused only when its response body
// was read or spliced exactly to its end, the upstream did not ask to close
// it and sent nothing more, and the request was written whole; any other is
// closed.
//
// Requests it does not carry itself go to Fallback: other schemes than http
// (https, so TLS and HTTP/2 upstreams), protocol upgrades (WebSocket), and
// requests that http.ProxyFromEnvironment sends through a forward proxy.
//
// Unlike http.Transport it never asks for gzip on its own (a proxy forwards
// the client's Accept-Encoding as it is and the body untouched), and it
// sends a request body at once rather than waiting for 100 Continue.
//
// Used as any http.Client's Transport, outside ReverseProxy, it works as an
// ordinary HTTP/1.1 transport whose bodies are read normally.
type ProxyTransport struct {
	// DialContext dials the upstream. Nil means a net.Dialer with the
	// timeout and keep-alive of http.DefaultTransport (30 s). Bodies on a
	// connection that is not a *net.TCPConn are copied, not spliced.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdleConnsPerHost is the most idle connections kept per host and
	// port; 0 means http.DefaultMaxIdleConnsPerHost (2), as in
	// http.Transport. Raise it to the concurrency you expect per upstream.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes a connection idle this long; 0 means 90 s.
	IdleConnTimeout time.Duration
	// ResponseHeaderTimeout, when positive, bounds the wait for the
	// response headers after the request is written.
	ResponseHeaderTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response head; 0 means 1 MiB.
	MaxResponseHeaderBytes int
	// DisableKeepAlives uses each connection for one request only.
	DisableKeepAlives bool
	// Fallback carries the requests this transport does not (see above);
	// nil means http.DefaultTransport.
	Fallback http.RoundTripper

	mu   sync.Mutex
	idle map[string][]*upConn // most recently used last

	dials atomic.Int64 // connections dialed
	open  atomic.Int64 // connections dialed and not yet closed
}

var _ http.RoundTripper = (*ProxyTransport)(nil)

// defaultProxyTransport serves every ReverseProxy whose Transport is nil, as
// http.DefaultTransport serves httputil.ReverseProxy.
var defaultProxyTransport = &ProxyTransport{}

const (
	defaultIdleConnTimeout = 90 * time.Second
	defaultMaxHeaderBytes  = 1 << 20
	max1xxResponses        = 5 // as http.Transport
)

var aLongTimeAgo = time.Unix(1, 0)

func (t *ProxyTransport) fallback() http.RoundTripper {
	if t.Fallback != nil {
		return t.Fallback
	}
	return http.DefaultTransport
}

func (t *ProxyTransport) maxIdle() int {
	if t.MaxIdleConnsPerHost != 0 {
		return t.MaxIdleConnsPerHost
	}
	return http.DefaultMaxIdleConnsPerHost
}

func (t *ProxyTransport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return defaultIdleConnTimeout
}

func (t *ProxyTransport) maxHeaderBytes() int {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return defaultMaxHeaderBytes
}

// CloseIdleConnections closes the idle connections; those in use are not
// affected.
func (t *ProxyTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, conns := range idle {
		for _, pc := range conns {
			pc.idleTimer.Stop()
			pc.close()
		}
	}
	if c, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req and returns the response head; the body is read (or
// spliced, under ReverseProxy) from the connection as it is consumed.
func (t *ProxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if reason := t.delegated(req); reason != "" {
		if tg := targetFrom(req.Context()); tg != nil {
			tg.transportReason = reason
		}
		return t.fallback().RoundTrip(req)
	}
	if err := validRequest(req); err != nil {
		closeReqBody(req)
		return nil, err
	}
	key := hostPort(req.URL)
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		pc, err := t.getConn(ctx, key, attempt > 0)
		if err != nil {
			closeReqBody(req)
			return nil, err
		}
		resp, err := pc.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		// An idle connection the upstream closed as it was reused: once
		// more on a new one, when the request can be sent again.
		var stale *staleConnError
		if attempt == 0 && errors.As(err, &stale) && replayable(req) {
			continue
		}
		if stale != nil {
			err = stale.err
		}
		return nil, err
	}
}

// delegated returns why req goes to Fallback, or "" when t carries it.
func (t *ProxyTransport) delegated(req *http.Request) string {
	if req.URL == nil || req.URL.Scheme != "http" {
		return CopyReasonUpstreamTLS
	}
	if upgradeRequest(req.Header) {
		return CopyReasonUpgrade
	}
	if u, err := http.ProxyFromEnvironment(req); u != nil || err != nil {
		return CopyReasonForwardProxy
	}
	return ""
}

func upgradeRequest(h http.Header) bool {
	if h.Get("Upgrade") == "" {
		return false
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// replayable reports whether req may be sent again after a connection
// failed before any response byte came: no body to resend, and a method
// that is idempotent (RFC 9110, section 9.2.2) or an idempotency key, as
// http.Transport judges.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// validRequest refuses what would make a malformed request on the wire:
// http.Transport checks the same.
func validRequest(req *http.Request) error {
	if req.URL.Host == "" {
		return errors.New("fastpath/handlers: request URL has no host")
	}
	if req.Method != "" && !isToken(req.Method) {
		return fmt.Errorf("fastpath/handlers: invalid method %q", req.Method)
	}
	for k, vs := range req.Header {
		if !isToken(k) {
			return fmt.Errorf("fastpath/handlers: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validFieldValue(v) {
				return fmt.Errorf("fastpath/handlers: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// validFieldValue reports a field value without control characters other
// than horizontal tab (RFC 9110, section 5.5).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// upConn is one upstream connection, owned by one exchange at a time.
type upConn struct {
	t      *ProxyTransport
	key    string
	conn   net.Conn
	tcp    *net.TCPConn // conn, when splice can read it
	bw     *bufio.Writer
	head   []byte // the buffer response heads are read into
	reused bool

	idleTimer *time.Timer
	closeOnce sync.Once
}

func (t *ProxyTransport) getConn(ctx context.Context, key string, fresh bool) (*upConn, error) {
	for !fresh {
		pc := t.popIdle(key)
		if pc == nil {
			break
		}
		if pc.idleAndClean() {
			pc.reused = true
			return pc, nil
		}
		pc.close()
	}
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	c, err := dial(ctx, "tcp", key)
	if err != nil {
		return nil, err
	}
	t.dials.Add(1)
	t.open.Add(1)
	pc := &upConn{t: t, key: key, conn: c, bw: bufio.NewWriterSize(c, 4<<10)}
	pc.tcp, _ = c.(*net.TCPConn)
	return pc, nil
}

func (t *ProxyTransport) popIdle(key string) *upConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	conns := t.idle[key]
	if len(conns) == 0 {
		return nil
	}
	pc := conns[len(conns)-1]
	conns[len(conns)-1] = nil
	t.idle[key] = conns[:len(conns)-1]
	pc.idleTimer.Stop() // if it fired already, it finds pc gone and leaves it
	return pc
}

// put returns pc to the idle pool, or closes it when the pool is full, keep-
// alive is off, or the upstream has sent something unasked.
func (t *ProxyTransport) put(pc *upConn) {
	if t.DisableKeepAlives || t.maxIdle() < 0 || !pc.idleAndClean() {
		pc.close()
		return
	}
	t.mu.Lock()
	if len(t.idle[pc.key]) >= t.maxIdle() {
		t.mu.Unlock()
		pc.close()
		return
	}
	if t.idle == nil {
		t.idle = make(map[string][]*upConn)
	}
	t.idle[pc.key] = append(t.idle[pc.key], pc)
	if pc.idleTimer == nil {
		pc.idleTimer = time.AfterFunc(t.idleTimeout(), pc.idleExpired)
	} else {
		pc.idleTimer.Reset(t.idleTimeout())
	}
	t.mu.Unlock()
}

// idleExpired closes pc if it is still idle.
func (pc *upConn) idleExpired() {
	t := pc.t
	t.mu.Lock()
	conns := t.idle[pc.key]
	i := -1
	for j, c := range conns {
		if c == pc {
			i = j
		}
	}
	if i < 0 {
		t.mu.Unlock()
		return
	}
	t.idle[pc.key] = append(conns[:i], conns[i+1:]...)
	t.mu.Unlock()
	pc.close()
}

func (pc *upConn) close() {
	pc.closeOnce.Do(func() {
		pc.conn.Close()
		pc.t.open.Add(-1)
	})
}

// staleConnError is a failure on a reused connection before any byte of a
// response arrived: the upstream had closed it while it was idle.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// exchange is what a round trip leaves for the body to settle.
type exchange struct {
	pc        *upConn
	req       *http.Request
	stopCtx   func() bool     // unregisters the cancellation of the request context
	writeDone <-chan error    // the request body's writer, when it runs apart
	closeConn bool            // the request or response ends the connection
	timedOut  *atomic.Bool    // the response header timeout fired
	headTimer *time.Timer     // the response header timeout
	ctx       context.Context // the request's
}

// roundTrip writes req on pc and reads the response head.
func (pc *upConn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Cancellation and the header timeout only ever move the deadline into
	// the past, so neither can undo the other; a connection whose deadline
	// may have moved is never reused.
	x := &exchange{pc: pc, req: req, ctx: ctx, timedOut: new(atomic.Bool)}
	x.stopCtx = context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
	x.closeConn = req.Close || pc.t.DisableKeepAlives
	if req.Body != nil && req.Body != http.NoBody {
		done := make(chan error, 1)
		x.writeDone = done
		go func() { done <- pc.writeRequest(req, x.closeConn) }()
	} else if err := pc.writeRequest(req, x.closeConn); err != nil {
		x.abandon()
		return nil, x.failure(err, false)
	}
	if d := pc.t.ResponseHeaderTimeout; d > 0 {
		x.headTimer = time.AfterFunc(d, func() {
			x.timedOut.Store(true)
			pc.conn.SetReadDeadline(aLongTimeAgo)
		})
	}
	resp, err := x.readResponse()
	if err != nil {
		x.abandon()
		return nil, err
	}
	return resp, nil
}

// writeRequest writes req, with Connection: close when closeConn.
func (pc *upConn) writeRequest(req *http.Request, closeConn bool) error {
	r := req
	if closeConn && !req.Close {
		c := *req
		c.Close = true
		r = &c
	}
	if err := r.Write(pc.bw); err != nil {
		pc.bw.Reset(pc.conn)
		return err
	}
	return pc.bw.Flush()
}

// abandon closes the connection of a failed exchange; the request body's
// writer, if any, fails and ends.
func (x *exchange) abandon() {
	x.stopCtx()
	if x.headTimer != nil {
		x.headTimer.Stop()
	}
	x.pc.close()
}

// failure turns an error of the exchange into the one to report: the
// context's own when it was canceled, the timeout when it fired.
func (x *exchange) failure(err error, gotBytes bool) error {
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	if x.timedOut.Load() {
		return errors.New("fastpath/handlers: timeout awaiting response headers")
	}
	if x.pc.reused && !gotBytes {
		return &staleConnError{err: err}
	}
	return err
}

// readResponse reads the response head, passing 1xx responses to the
// request's httptrace.ClientTrace as http.Transport does, and sets up the
// body.
func (x *exchange) readResponse() (*http.Response, error) {
	pc := x.pc
	trace := httptrace.ContextClientTrace(x.ctx)
	n1xx := 0
	for got := false; ; got = true {
		head, err := pc.readHead(pc.t.maxHeaderBytes())
		if err != nil {
			return nil, x.failure(err, got || len(head) > 0)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), x.req)
		if err != nil {
			return nil, fmt.Errorf("fastpath/handlers: malformed response from upstream: %w", err)
		}
		code := resp.StatusCode
		if code == http.StatusSwitchingProtocols {
			// Upgrades go to Fallback; a 101 here was not asked for.
			return nil, errors.New("fastpath/handlers: upstream switched protocols unasked")
		}
		if code >= 100 && code <= 199 {
			if n1xx++; n1xx > max1xxResponses {
				return nil, errors.New("fastpath/handlers: too many 1xx informational responses")
			}
			if trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
					return nil, err
				}
				n1xx = 0 // the hook's owner limits what it passes on
			}
			continue
		}
		if x.headTimer != nil && !x.headTimer.Stop() {
			// It fired, and the deadline may have moved: do not go on.
			return nil, errors.New("fastpath/handlers: timeout awaiting response headers")
		}
		return x.withBody(resp, head)
	}
}

// withBody gives resp its body: none, a Content-Length body read (or
// spliced) straight from the socket, or net/http's own reader for chunked
// and close-delimited bodies.
func (x *exchange) withBody(resp *http.Response, head []byte) (*http.Response, error) {
	x.closeConn = x.closeConn || resp.Close
	tg := targetFrom(x.ctx)
	switch {
	case resp.Body == http.NoBody:
		x.settle(true)
		return resp, nil
	case resp.ContentLength > 0 && len(resp.TransferEncoding) == 0:
		b := &proxyBody{x: x, resp: resp, length: resp.ContentLength, target: tg}
		b.src.Conn = x.pc.conn
		b.src.N = resp.ContentLength
		resp.Body = b
		return resp, nil
	}
	// Parse again over the head and the socket, so net/http's body reader
	// handles chunks, trailers and close-delimited bodies.
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(head), x.pc.conn))
	full, err := http.ReadResponse(br, x.req)
	if err != nil {
		return nil, fmt.Errorf("fastpath/handlers: malformed response from upstream: %w", err)
	}
	if tg != nil {
		if len(full.TransferEncoding) > 0 {
			tg.transportReason = CopyReasonChunked
		} else {
			tg.transportReason = CopyReasonUnknownLength
		}
	}
	full.Body = &streamBody{x: x, rc: full.Body, br: br}
	return full, nil
}

// settle ends the exchange: the connection goes back to the pool when clean
// says the response was read exactly to its end and nothing else stands in
// the way, and is closed otherwise.
func (x *exchange) settle(clean bool) {
	ctxOK := x.stopCtx()
	if clean && ctxOK && !x.closeConn && x.requestWritten() {
		x.pc.t.put(x.pc)
		return
	}
	x.pc.close()
}

// requestWritten reports whether the whole request went out without error.
func (x *exchange) requestWritten() bool {
	if x.writeDone == nil {
		return true
	}
	select {
	case err := <-x.writeDone:
		return err == nil
	default:
		return false // the upstream answered before it had the whole request
	}
}

// streamBody is a chunked or close-delimited body, read by net/http's
// reader over the connection.
type streamBody struct {
	x      *exchange
	rc     io.ReadCloser
	br     *bufio.Reader
	once   sync.Once
	closed atomic.Bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	if err != nil {
		// Reusable only after a clean end with nothing read past it.
		clean := err == io.EOF && b.br.Buffered() == 0
		b.once.Do(func() { b.x.settle(clean) })
		if err != io.EOF {
			if cerr := b.x.ctx.Err(); cerr != nil {
				err = cerr
			}
		}
	}
	return n, err
}

// Close ends the body. The connection is closed before anything is
// drained: net/http's reader would otherwise read an unread body to its
// end.
func (b *streamBody) Close() error {
	b.closed.Store(true)
	b.once.Do(func() { b.x.settle(false) })
	return nil
}

var errBodyClosed = errors.New("fastpath/handlers: read on a closed response body")
