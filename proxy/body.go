package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
)

// socketBody is a response body with a Content-Length, still in the upstream
// socket. Read by anyone, it reads from the socket. Read by ReverseProxy's
// copy loop for the response it serves (the one the ModifyResponse hook
// bound to the request's target), its first Read instead hands the whole
// body to the client ResponseWriter's ReadFrom as the upstream socket, so
// net/http passes it down to the client connection and splice(2), and then
// reports EOF: ReverseProxy never sees a byte.
type socketBody struct {
	x      *exchange
	resp   *http.Response
	length int64
	target *target // nil outside ReverseProxy
	src    zerocopy.Source

	tried  bool // the splice was considered
	once   sync.Once
	err    error // what Read returns once done
	closed atomic.Bool
}

var _ io.ReadCloser = (*socketBody)(nil)

func (b *socketBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, b.err
	}
	if !b.tried {
		b.tried = true
		if b.target != nil && b.target.body == b {
			if b.trySplice() {
				return 0, b.err
			}
		}
	}
	n, err := b.src.Read(p)
	if err == nil && b.src.N == 0 {
		// The last byte: settle now, so the connection goes back to the
		// pool whether or not the reader reads on to EOF before Close.
		b.finish(true, nil)
		return n, io.EOF
	}
	if err == io.EOF {
		b.finish(b.src.N == 0, nil)
		if b.src.N == 0 {
			return n, io.EOF
		}
		return n, b.err
	}
	return n, err
}

// Close ends the body; a body not read to its end closes the connection.
func (b *socketBody) Close() error {
	b.finish(false, errBodyClosed)
	return nil
}

// finish settles the exchange once. complete is true when the whole body
// went out; otherwise cause, when not nil, is what Read reports (else the
// upstream's failure is worked out from the source).
func (b *socketBody) finish(complete bool, cause error) {
	b.once.Do(func() {
		switch {
		case complete:
			b.err = io.EOF
		case cause != nil:
			b.err = cause
		default:
			b.err = b.upstreamFailure()
		}
		b.x.settle(complete)
		b.closed.Store(true)
	})
}

// upstreamFailure is the error for a body that stopped short: the client's
// context when it went away (net/http cancels it), else the upstream's
// failure, which is recorded on the span.
func (b *socketBody) upstreamFailure() error {
	if err := b.x.ctx.Err(); err != nil {
		return err
	}
	cause, kind := b.src.Err, "reset"
	switch {
	case cause == nil:
		cause, kind = io.ErrUnexpectedEOF, "closed"
	case isTimeout(cause):
		kind = "timeout"
	}
	err := fmt.Errorf("fastpath/proxy: upstream body ended %d bytes short of its Content-Length %d: %w",
		b.src.N, b.length, cause)
	if b.target != nil {
		b.target.span.RecordError(err)
		b.target.span.SetAttributes(attribute.String(UpstreamErrorKey, kind))
	}
	return err
}

// isTimeout reports whether err is a timeout: a deadline that passed (one
// set on the connection by whoever dialed it, say), or the kernel giving up
// on an unanswered peer (ETIMEDOUT, from TCP keep-alive or retransmission).
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trySplice hands the body to the client ResponseWriter's ReadFrom when
// nothing stands in the way, and reports whether it did (the body is then
// finished). Otherwise the caller reads, and the reason is on the span.
func (b *socketBody) trySplice() bool {
	tg := b.target
	rf, reason := b.spliceable()
	if reason != "" {
		tg.noteCopy(reason)
		return false
	}
	// Without a Content-Type (or with a Content-Encoding), net/http writes
	// the first 512 bytes itself, to sniff a type as it does for every
	// body ReverseProxy copies, and hands the rest to the connection's
	// ReadFrom. Otherwise send the head now, so that no byte is copied.
	h := tg.w.Header()
	if _, typed := h["Content-Type"]; typed || h.Get("Content-Encoding") != "" {
		http.NewResponseController(tg.w).Flush()
	}
	var err error
	if zerocopy.FromContext(b.x.ctx) != nil {
		// Under middleware.Listener the client connection splices a
		// zerocopy.Source itself, counts it, and keeps a failure to read
		// the upstream out of ReadFrom's error.
		_, err = rf.ReadFrom(&b.src)
		if r := noPipeReason(b.src.NoPipe); r != "" {
			tg.noteCopy(r)
		}
	} else {
		// Otherwise the runtime's (*net.TCPConn).ReadFrom splices from an
		// *io.LimitedReader around the upstream *net.TCPConn; it reports a
		// failure of either socket as its own error, so the upstream's
		// socket says whose it was. A canceled request (the client left)
		// ends the splice by shutting the upstream's reading side, at
		// EOF, rather than by the expired deadline the transport sets
		// otherwise, which the ReadFrom would report as a write deadline
		// of its own.
		if b.x.stopCtx() {
			pc := b.x.pc
			b.x.stopCtx = context.AfterFunc(b.x.ctx, func() {
				pc.tcp.CloseRead()
				pc.conn.SetWriteDeadline(expired)
			})
		}
		lr := &io.LimitedReader{R: b.x.pc.tcp, N: b.src.N}
		_, err = rf.ReadFrom(lr)
		b.src.N = lr.N
		if err != nil && b.src.N > 0 && !b.x.pc.sound() {
			b.src.Err, err = err, nil
		}
	}
	tg.noteSplice()
	switch {
	case b.src.N == 0 && err == nil:
		b.finish(true, nil)
	case err != nil:
		// Writing to the client failed: it left, or its connection was
		// cut. ReverseProxy's copy loop takes context.Canceled for the
		// client's departure, as when its own write to the client fails:
		// it logs no upstream read error and aborts the handler.
		b.finish(false, context.Canceled)
	default:
		b.finish(false, nil)
	}
	return true
}

// noPipeReason is the copy reason for a body the client connection copied
// for want of a pipe, "" when it did not.
func noPipeReason(np zerocopy.NoPipe) middleware.CopyReason {
	switch np {
	case zerocopy.NoPipeSmall:
		return middleware.CopyReasonPipeSmall
	case zerocopy.NoPipeBudget:
		return middleware.CopyReasonPipeBudget
	case zerocopy.NoPipeDescriptors:
		return middleware.CopyReasonPipeDescriptors
	case zerocopy.NoPipeFailed:
		return middleware.CopyReasonPipeFailed
	}
	return ""
}

// spliceable returns the client ResponseWriter's ReadFrom, or why the body
// must be copied instead.
func (b *socketBody) spliceable() (io.ReaderFrom, middleware.CopyReason) {
	tg := b.target
	if tg.clientReason != "" {
		return nil, tg.clientReason
	}
	if b.x.pc.tcp == nil {
		return nil, middleware.CopyReasonUpstreamConn
	}
	// A compressor sets Content-Encoding as the status is written, so
	// name it before the ReadFrom it may also hide.
	h := tg.w.Header()
	if h.Get("Content-Encoding") != b.resp.Header.Get("Content-Encoding") {
		return nil, middleware.CopyReasonEncoded
	}
	if h.Get("Content-Length") != strconv.FormatInt(b.length, 10) {
		return nil, middleware.CopyReasonLengthChanged
	}
	rf, ok := tg.w.(io.ReaderFrom)
	if !ok {
		return nil, middleware.CopyReasonNoReadFrom
	}
	return rf, ""
}

// target is the client side of one proxied request: the ResponseWriter
// ReverseProxy writes to, found by the transport through the request
// context.
type target struct {
	w            http.ResponseWriter
	span         trace.Span
	clientReason middleware.CopyReason // why the client connection cannot take a splice
	body         *socketBody           // the body ReverseProxy copies, bound in ModifyResponse

	transportReason middleware.CopyReason // why the transport's body cannot be spliced
	noted           bool
}

type targetKey struct{}

func targetFrom(ctx context.Context) *target {
	tg, _ := ctx.Value(targetKey{}).(*target)
	return tg
}

func (tg *target) noteSplice() {
	if !tg.noted {
		tg.noted = true
		tg.span.SetAttributes(attribute.String(BodyKey, "splice"))
	}
}

func (tg *target) noteCopy(reason middleware.CopyReason) {
	if !tg.noted {
		tg.noted = true
		tg.span.SetAttributes(attribute.String(BodyKey, "copy"), attribute.String(CopyReasonKey, string(reason)))
	}
}
