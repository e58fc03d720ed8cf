package proxy

import (
	"context"
	"mime"
	"net/http"
	"net/http/httputil"

	"go.opentelemetry.io/otel/trace"
)

// Span attributes [ReverseProxy] sets on the span in the request context
// (the server span of middleware.Tracing, say), saying how a response body
// went and why.
const (
	// ProxyBodyKey is "splice" when the body was handed to the client
	// ResponseWriter as the upstream socket, and "copy" when it went
	// through ReverseProxy's ordinary copy. Whether the kernel then did
	// splice it is fastpath.response.splice.size (middleware.Listener).
	// Responses without a body carry neither.
	ProxyBodyKey = "fastpath.proxy.body"
	// ProxyCopyReasonKey says why a body was copied: one of the CopyReason
	// values.
	ProxyCopyReasonKey = "fastpath.proxy.copy_reason"
	// ProxyUpstreamErrorKey says how an upstream failed mid-body: "closed"
	// (it closed the connection early), "reset" or "timeout". The error
	// itself is recorded on the span as an exception event.
	ProxyUpstreamErrorKey = "fastpath.proxy.upstream_error"
)

// Why [ReverseProxy] copied a response body instead of splicing it: the
// values of ProxyCopyReasonKey.
const (
	CopyReasonTransport     = "transport"      // rp.Transport is not a *ProxyTransport
	CopyReasonUpstreamTLS   = "upstream_tls"   // not an http:// upstream (https: TLS, maybe HTTP/2)
	CopyReasonUpgrade       = "upgrade"        // a protocol upgrade (WebSocket): bytes both ways
	CopyReasonForwardProxy  = "forward_proxy"  // sent through an HTTP_PROXY
	CopyReasonChunked       = "chunked"        // the upstream sent it chunked
	CopyReasonUnknownLength = "unknown_length" // no Content-Length: it ends when the upstream closes
	CopyReasonUpstreamConn  = "upstream_conn"  // DialContext returned something other than a *net.TCPConn
	CopyReasonClientTLS     = "client_tls"     // the client connection is TLS
	CopyReasonClientHTTP2   = "client_http2"   // the client speaks HTTP/2
	CopyReasonNoReadFrom    = "no_readfrom"    // a ResponseWriter wrapper hides io.ReaderFrom
	CopyReasonEncoded       = "encoded"        // a middleware changed Content-Encoding (compresses on the fly)
	CopyReasonLength        = "length_changed" // the Content-Length sent differs from the upstream's
	CopyReasonBodyReplaced  = "body_replaced"  // ModifyResponse replaced the body
	// CopyReasonFlushInterval: ReverseProxy flushes this response as it
	// copies (rp.FlushInterval is not zero, or the body is a
	// text/event-stream), from a timer of its own that may call Flush
	// while a splice writes; so the body goes through its copy and
	// flushes.
	CopyReasonFlushInterval = "flush_interval"
)

// ReverseProxy returns a handler that serves with rp's semantics (its
// Rewrite or Director, ModifyResponse, ErrorHandler, ErrorLog, BufferPool,
// FlushInterval, hop-by-hop header removal, X-Forwarded-* headers,
// trailers, 1xx responses and protocol upgrades, all done by rp itself) but
// sends a response body with a Content-Length from a plain-http HTTP/1.x
// upstream from the upstream socket to the client socket by splice(2),
// without copying it through user space.
//
// rp.Transport must be nil (a shared [ProxyTransport]) or a *ProxyTransport
// for that; any other transport is used as given and its bodies are copied.
// What is spliced, what is copied and why, and how failures are recorded is
// in the package documentation (# Reverse proxy). rp must have exactly one
// of Rewrite and Director; ReverseProxy panics otherwise. rp is not
// modified, and changing it afterwards has no effect.
func ReverseProxy(rp *httputil.ReverseProxy) http.Handler {
	if rp == nil {
		panic("fastpath/handlers: ReverseProxy: nil *httputil.ReverseProxy")
	}
	if (rp.Rewrite == nil) == (rp.Director == nil) {
		panic("fastpath/handlers: ReverseProxy: exactly one of Rewrite and Director must be set")
	}
	h := &proxyHandler{}
	cp := *rp
	switch rp.Transport.(type) {
	case nil:
		cp.Transport = defaultProxyTransport
		h.ours = true
	case *ProxyTransport:
		if rp.Transport.(*ProxyTransport) == nil {
			panic("fastpath/handlers: ReverseProxy: rp.Transport is a nil *ProxyTransport (leave Transport nil for the shared one)")
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

type proxyHandler struct {
	rp   *httputil.ReverseProxy // a copy of the user's, with our transport and hook
	ours bool                   // the transport is a *ProxyTransport
}

func (h *proxyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tg := &target{w: w, span: trace.SpanFromContext(r.Context())}
	switch {
	case r.ProtoMajor >= 2:
		tg.clientReason = CopyReasonClientHTTP2
	case r.TLS != nil:
		tg.clientReason = CopyReasonClientTLS
	}
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, tg)))
}

// bind runs after the user's ModifyResponse, just before ReverseProxy copies
// res: it marks res's body as the one to splice, or notes why it is copied.
func (h *proxyHandler) bind(res *http.Response, before any) {
	if res.Request == nil {
		return
	}
	tg := targetFrom(res.Request.Context())
	if tg == nil || res.Body == nil || res.Body == http.NoBody {
		return
	}
	if b, ok := res.Body.(*proxyBody); ok && b.target == tg {
		if h.flushes(res) {
			tg.noteCopy(CopyReasonFlushInterval)
			return
		}
		tg.body = b // the first Read decides
		return
	}
	switch {
	case !h.ours:
		tg.noteCopy(CopyReasonTransport)
	case isProxyBody(before):
		tg.noteCopy(CopyReasonBodyReplaced)
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
func (h *proxyHandler) flushes(res *http.Response) bool {
	if h.rp.FlushInterval != 0 || res.ContentLength < 0 {
		return true
	}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

func isProxyBody(v any) bool {
	_, ok := v.(*proxyBody)
	return ok
}
