package proxy

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
	"syscall"
	"time"

	"github.com/fastpath-go/fastpath/internal/httpsyntax"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
)

// Transport is the HTTP/1.1 client [ReverseProxy] uses for plain-http
// upstreams, so that a response body with a Content-Length can go from the
// upstream socket to the client socket by splice(2). Give one as the
// httputil.ReverseProxy's Transport to tune it; a nil Transport means a
// shared Transport with the zero configuration.
//
// It pools connections as http.Transport does: keep-alive, at most
// MaxIdleConnsPerHost idle connections per host and port, closed after
// IdleConnTimeout, dials and waits for response headers bounded by the
// request's context. A connection is reused only when its response body
// was read or spliced exactly to its end, the upstream did not ask to close
// it and sent nothing more, and the request was written whole; any other is
// closed. "Sent nothing more" is checked by peeking at the socket without
// waiting, so a connection from a DialContext that offers no descriptor
// (no syscall.Conn), or on a system without the peek, is never reused.
//
// A request body is written while the response head is awaited, so an
// upstream may answer early. When writing the request fails (its body's
// Read failed, or the upstream stopped taking it) and no answer has begun
// to arrive, the round trip fails at once with that error; an answer that
// has begun is read and returned, and its connection is not reused.
//
// Of a request's httptrace.ClientTrace it calls Got1xxResponse only (which
// is what ReverseProxy uses to pass 1xx responses on); GetConn, GotConn,
// PutIdleConn, DNS, connect, TLS, WroteHeaders, WroteRequest,
// GotFirstResponseByte and the others are not called. Fallback calls its
// own.
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
type Transport struct {
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
	// response head from the moment the whole request (its body included)
	// is written; the round trip then fails with ErrResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// MaxResponseHeaderBytes bounds the response heads of one round trip
	// together: the final head and the informational (1xx) ones before
	// it, of which at most 16 are taken. 0 means 1 MiB.
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

	headTimerArmed func() // for tests: called as ResponseHeaderTimeout starts
}

var _ http.RoundTripper = (*Transport)(nil)

// defaultTransport serves every ReverseProxy whose Transport is nil, as
// http.DefaultTransport serves httputil.ReverseProxy.
var defaultTransport = &Transport{}

const (
	defaultIdleConnTimeout = 90 * time.Second
	defaultMaxHeaderBytes  = 1 << 20
	// maxInterim bounds the informational (1xx) responses before the
	// final one, whatever a Got1xxResponse hook does with them; their
	// bytes count against MaxResponseHeaderBytes too.
	maxInterim = 16
	// headBufSize is the head buffer a connection starts with and keeps
	// while pooled; a larger one grown for a big head is dropped.
	headBufSize = 4 << 10
)

// expired is an instant long past: a deadline set to it makes every wait on
// the connection fail at once.
var expired = time.Unix(0, 0)

// ErrResponseHeaderTimeout is the error of a round trip whose response head
// did not arrive within Transport.ResponseHeaderTimeout of the request
// being written. It is a net.Error whose Timeout reports true.
var ErrResponseHeaderTimeout error = headTimeoutError{}

type headTimeoutError struct{}

func (headTimeoutError) Error() string {
	return "fastpath/proxy: no response head from the upstream within ResponseHeaderTimeout"
}
func (headTimeoutError) Timeout() bool   { return true }
func (headTimeoutError) Temporary() bool { return true }

var _ net.Error = headTimeoutError{}

func (t *Transport) fallback() http.RoundTripper {
	if t.Fallback != nil {
		return t.Fallback
	}
	return http.DefaultTransport
}

func (t *Transport) maxIdle() int {
	if t.MaxIdleConnsPerHost != 0 {
		return t.MaxIdleConnsPerHost
	}
	return http.DefaultMaxIdleConnsPerHost
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return defaultIdleConnTimeout
}

func (t *Transport) maxHeaderBytes() int {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return defaultMaxHeaderBytes
}

// CloseIdleConnections closes the idle connections; those in use are not
// affected.
func (t *Transport) CloseIdleConnections() {
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
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
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
		if attempt == 0 && errors.As(err, &stale) && resendable(req) {
			continue
		}
		if stale != nil {
			err = stale.err
		}
		return nil, err
	}
}

// delegated returns why req goes to Fallback, or "" when t carries it.
func (t *Transport) delegated(req *http.Request) middleware.CopyReason {
	if req.URL == nil || req.URL.Scheme != "http" {
		return middleware.CopyReasonUpstreamTLS
	}
	if upgradeRequest(req.Header) {
		return middleware.CopyReasonUpgrade
	}
	if u, err := http.ProxyFromEnvironment(req); u != nil || err != nil {
		return middleware.CopyReasonForwardProxy
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

// resendable reports whether req can go out a second time, on a new
// connection, after the reused one it was sent on failed before any byte of
// an answer came back. Only a request without a body qualifies (nothing
// would be left to send again), and only with a method RFC 9110 (section
// 9.2.2) makes idempotent, so that a request the upstream did act on
// before the connection died does no harm when repeated.
func resendable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
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

// validRequest refuses a request that would go on the wire malformed: no
// host to send it to, or a method or header field that is not a token or
// whose value holds control characters.
func validRequest(req *http.Request) error {
	if req.URL.Host == "" {
		return fmt.Errorf("fastpath/proxy: no upstream host in the request URL %q", req.URL)
	}
	if req.Method != "" && !httpsyntax.IsToken(req.Method) {
		return fmt.Errorf("fastpath/proxy: the request method %q is not a token", req.Method)
	}
	for k, vs := range req.Header {
		if !httpsyntax.IsToken(k) {
			return fmt.Errorf("fastpath/proxy: the request header name %q is not a token", k)
		}
		for _, v := range vs {
			if !validFieldValue(v) {
				return fmt.Errorf("fastpath/proxy: the request header %s has a control character in its value", k)
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
	t      *Transport
	key    string
	conn   net.Conn
	tcp    *net.TCPConn // conn, when splice can read it
	bw     *bufio.Writer
	head   []byte // the buffer response heads are read into
	reused bool

	// headRead is how many bytes of response heads the current round trip
	// consumed so far; the request body's writer reads it from its
	// goroutine.
	headRead atomic.Int64

	idleTimer *time.Timer
	closeOnce sync.Once
}

func (t *Transport) getConn(ctx context.Context, key string, fresh bool) (*upConn, error) {
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
	if err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && zerocopy.ReleasePipes() > 0 {
		// Pipes held descriptors the dial needed.
		c, err = dial(ctx, "tcp", key)
	}
	if err != nil {
		return nil, err
	}
	t.dials.Add(1)
	t.open.Add(1)
	pc := &upConn{t: t, key: key, conn: c, bw: bufio.NewWriterSize(c, headBufSize)}
	pc.tcp, _ = c.(*net.TCPConn)
	return pc, nil
}

func (t *Transport) popIdle(key string) *upConn {
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
func (t *Transport) put(pc *upConn) {
	if t.DisableKeepAlives || t.maxIdle() < 0 || !pc.idleAndClean() {
		pc.close()
		return
	}
	if cap(pc.head) > headBufSize {
		pc.head = nil // a head buffer grown for one big head is not kept idle
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

// exchange is one request and its response on an upstream connection, from
// the request being written to the body being settled.
type exchange struct {
	pc      *upConn
	req     *http.Request
	ctx     context.Context // the request's
	stopCtx func() bool     // unregisters the cancellation of the request context
	// closeConn is set when the request or the response ends the
	// connection; only the goroutine reading the response touches it.
	closeConn bool

	// The request body, when there is one, is written by a goroutine of its
	// own while the response is awaited; mu orders what the two share.
	mu         sync.Mutex
	sending    bool        // the request body's writer still runs
	sendErr    error       // why writing the request failed
	sendCut    bool        // sendErr moved the read deadline, to end the wait for a head
	awaiting   bool        // the response head is still awaited
	headTimer  *time.Timer // ResponseHeaderTimeout, armed once the request is out
	headExpiry bool        // the timer fired
}

// roundTrip writes req on pc and reads the response head.
func (pc *upConn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Cancellation, the header timeout and a failed request body only ever
	// move the deadline into the past, so none undoes another; a
	// connection whose deadline may have moved is never reused.
	x := &exchange{pc: pc, req: req, ctx: ctx, awaiting: true}
	x.stopCtx = context.AfterFunc(ctx, func() { pc.conn.SetDeadline(expired) })
	x.closeConn = req.Close || pc.t.DisableKeepAlives
	pc.headRead.Store(0)
	if req.Body != nil && req.Body != http.NoBody {
		x.sending = true
		go x.send(x.closeConn)
	} else if err := pc.writeRequest(req, x.closeConn); err != nil {
		x.abandon()
		return nil, x.failure(err)
	} else {
		x.mu.Lock()
		x.armHeadTimer()
		x.mu.Unlock()
	}
	resp, err := x.readResponse()
	if err != nil {
		x.abandon()
		return nil, err
	}
	return resp, nil
}

// send writes a request with a body, apart from the reader of the response.
// closeConn is passed in rather than read from x, which the reader changes.
//
// When writing fails (the request body's own Read failed, the upstream
// stopped reading or went away), no answer will follow unless one has begun
// to arrive already; then the reader is left to take it, and otherwise its
// wait is cut short at once.
func (x *exchange) send(closeConn bool) {
	err := x.pc.writeRequest(x.req, closeConn)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sending = false
	x.sendErr = err
	if !x.awaiting {
		return // answered, or given up on: the connection is the reader's
	}
	if err != nil && x.pc.headRead.Load() == 0 && !x.pc.pending() {
		x.sendCut = true
		x.pc.conn.SetReadDeadline(expired)
		return
	}
	x.armHeadTimer()
}

// armHeadTimer starts ResponseHeaderTimeout, with x.mu held, once the
// request is written.
func (x *exchange) armHeadTimer() {
	d := x.pc.t.ResponseHeaderTimeout
	if d <= 0 || x.headTimer != nil {
		return
	}
	x.headTimer = time.AfterFunc(d, func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.awaiting {
			x.headExpiry = true
			x.pc.conn.SetReadDeadline(expired)
		}
	})
	if h := x.pc.t.headTimerArmed; h != nil {
		h()
	}
}

// headDone ends the wait for the head, once the final head is read: it
// stops the header timer and reports whether the read deadline is still
// untouched, so the body can be read. A write failure that moved the
// deadline though an answer came anyway is undone when the request context
// has not ended (its own move of the deadline comes after, if at all).
func (x *exchange) headDone() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.awaiting = false
	if x.headTimer != nil {
		x.headTimer.Stop()
	}
	if x.headExpiry {
		return ErrResponseHeaderTimeout
	}
	if x.sendCut {
		x.pc.conn.SetReadDeadline(time.Time{})
		if err := x.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
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
	x.mu.Lock()
	x.awaiting = false
	if x.headTimer != nil {
		x.headTimer.Stop()
	}
	x.mu.Unlock()
	x.pc.close()
}

// failure turns an error of the exchange into the one to report: the
// context's own when it was canceled, the header timeout when it fired, the
// request's failure when that is what ended the wait, and a stale
// connection when a reused one failed before any byte of an answer.
func (x *exchange) failure(err error) error {
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	x.mu.Lock()
	expiry, cut, sendErr := x.headExpiry, x.sendCut, x.sendErr
	x.mu.Unlock()
	switch {
	case expiry:
		return ErrResponseHeaderTimeout
	case cut:
		return fmt.Errorf("fastpath/proxy: sending the request to the upstream: %w", sendErr)
	case x.pc.reused && x.pc.headRead.Load() == 0:
		return &staleConnError{err: err}
	}
	return err
}

// readResponse reads response heads until the final one, handing each
// informational (1xx) one to the request's httptrace.ClientTrace, and sets
// up the body. All the heads of one round trip share one byte budget,
// MaxResponseHeaderBytes, and at most maxInterim informational ones are
// taken.
func (x *exchange) readResponse() (*http.Response, error) {
	pc := x.pc
	hook := httptrace.ContextClientTrace(x.ctx)
	budget := pc.t.maxHeaderBytes()
	for interim := 0; ; interim++ {
		head, err := pc.readHead(budget)
		if err != nil {
			return nil, x.failure(err)
		}
		budget -= len(head)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), x.req)
		if err != nil {
			return nil, fmt.Errorf("fastpath/proxy: the upstream's response head does not parse: %w", err)
		}
		code := resp.StatusCode
		if code == http.StatusSwitchingProtocols {
			// Upgrades go to Fallback; a 101 here was not asked for.
			return nil, errors.New("fastpath/proxy: upstream switched protocols unasked")
		}
		if code < 100 || code > 199 {
			if err := x.headDone(); err != nil {
				return nil, err
			}
			return x.withBody(resp, head)
		}
		if interim == maxInterim {
			return nil, fmt.Errorf("fastpath/proxy: the upstream sent more than %d informational responses", maxInterim)
		}
		if hook != nil && hook.Got1xxResponse != nil {
			if err := hook.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
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
		b := &socketBody{x: x, resp: resp, length: resp.ContentLength, target: tg}
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
		return nil, fmt.Errorf("fastpath/proxy: malformed response from upstream: %w", err)
	}
	if tg != nil {
		if len(full.TransferEncoding) > 0 {
			tg.transportReason = middleware.CopyReasonChunked
		} else {
			tg.transportReason = middleware.CopyReasonUnknownLength
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

// requestWritten reports whether the whole request went out without error
// (an upstream may answer before it has read all of the request).
func (x *exchange) requestWritten() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return !x.sending && x.sendErr == nil
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

var errBodyClosed = errors.New("fastpath/proxy: read on a closed response body")
