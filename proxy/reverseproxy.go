package proxy

import (
	"context"
	"mime"
	"net/http"
	"net/http/httputil"

	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/internal/copynote"
	"github.com/fastpath-go/fastpath/middleware"
)

// Span attributes [ReverseProxy] sets on the span in the request context
// (the server span of middleware.Tracing, say), saying how a response body
// went. Why a body was copied is middleware.CopyReasonKey, in the request's
// records (see "What keeps the splice" in the package documentation).
const (
	// BodyKey is "splice" when the body was handed to the client
	// ResponseWriter as the upstream socket, and "copy" when it went
	// through ReverseProxy's ordinary copy. Whether the kernel then did
	// splice it is fastpath.response.splice.size (middleware.Listener).
	// Responses without a body carry neither.
	BodyKey = "fastpath.proxy.body"
	// UpstreamErrorKey says how an upstream failed mid-body: "closed"
	// (it closed the connection early), "reset" or "timeout". The error
	// itself is recorded on the span as an exception event.
	UpstreamErrorKey = "fastpath.proxy.upstream_error"
)

// ReverseProxy returns a handler that serves with rp's semantics (its
// Rewrite or Director, ModifyResponse, ErrorHandler, ErrorLog, BufferPool,
// FlushInterval, hop-by-hop header removal, X-Forwarded-* headers,
// trailers, 1xx responses and protocol upgrades, all done by rp itself) but
// sends a response body with a Content-Length from a plain-http HTTP/1.x
// upstream from the upstream socket to the client socket by splice(2),
// without copying it through user space.
//
// rp.Transport must be nil (a shared [Transport]) or a *Transport for
// that; any other transport is used as given and its bodies are copied.
// What is spliced, what is copied and why, and how failures are recorded
// is in the package documentation ("What keeps the splice", "Failures").
// rp must have exactly one of Rewrite and Director; ReverseProxy panics
// otherwise. rp is not modified, and changing it afterwards has no effect.
func ReverseProxy(rp *httputil.ReverseProxy) http.Handler {
	if rp == nil {
		panic("fastpath/proxy: ReverseProxy: nil *httputil.ReverseProxy")
	}
	if (rp.Rewrite == nil) == (rp.Director == nil) {
		panic("fastpath/proxy: ReverseProxy: exactly one of Rewrite and Director must be set")
	}
	h := &handler{}
	cp := *rp
	switch rp.Transport.(type) {
	case nil:
		cp.Transport = defaultTransport
		h.ours = true
	case *Transport:
		if rp.Transport.(*Transport) == nil {
			panic("fastpath/proxy: ReverseProxy: rp.Transport is a nil *Transport (leave Transport nil for the shared one)")
		}
		h.ours = true
	}
	user := rp.ModifyResponse
	cp.ModifyResponse = func(res *http.Response) error {
		before := res.Body
		if user != nil {
			if err := user(res); err != nil {
				return err
			}
		}
		h.bind(res, before)
		return nil
	}
	h.rp = &cp
	return h
}

type handler struct {
	rp   *httputil.ReverseProxy // a copy of the user's, with our transport and hook
	ours bool                   // the transport is a *Transport
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tg := &target{w: w, span: trace.SpanFromContext(r.Context()), rec: copynote.From(r.Context())}
	switch {
	case r.ProtoMajor >= 2:
		tg.clientReason = middleware.CopyReasonClientHTTP2
	case r.TLS != nil:
		tg.clientReason = middleware.CopyReasonClientTLS
	}
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, tg)))
}

// bind runs after the user's ModifyResponse, just before ReverseProxy copies
// res: it marks res's body as the one to splice, or notes why it is copied.
func (h *handler) bind(res *http.Response, before any) {
	if res.Request == nil {
		return
	}
	tg := targetFrom(res.Request.Context())
	if tg == nil || res.Body == nil || res.Body == http.NoBody {
		return
	}
	if b, ok := res.Body.(*socketBody); ok && b.target == tg {
		if h.flushes(res) {
			tg.noteCopy(middleware.CopyReasonFlushInterval)
			return
		}
		tg.body = b // the first Read decides
		return
	}
	switch {
	case !h.ours:
		tg.noteCopy(middleware.CopyReasonTransport)
	case isSocketBody(before):
		tg.noteCopy(middleware.CopyReasonBodyReplaced)
	case tg.transportReason != "":
		tg.noteCopy(tg.transportReason)
	}
}

// flushes reports whether ReverseProxy will copy res through its flushing
// writer, whose timer calls Flush on the ResponseWriter from a goroutine of
// its own: it does so for a nonzero FlushInterval, for Server-Sent Events
// (text/event-stream, flushed after every write) and for a body of unknown
// length. A splice must not run beside that, since the ResponseWriter is
// not safe for concurrent use.
func (h *handler) flushes(res *http.Response) bool {
	if h.rp.FlushInterval != 0 || res.ContentLength < 0 {
		return true
	}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

func isSocketBody(v any) bool {
	_, ok := v.(*socketBody)
	return ok
}
