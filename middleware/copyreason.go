package middleware

// CopyReason is why a response body that could have gone zero-copy (by
// sendfile(2) from a file, or splice(2) from an upstream socket) was copied
// through user space instead. Its values are a closed set, the constants
// below, and this is the one place that documents them; whatever records a
// copy records one of them.
//
// Today only the reverse proxy records one, as the span attribute
// fastpath.proxy.copy_reason (see package
// github.com/fastpath-go/fastpath/proxy).
type CopyReason string

// Why a body was copied: on the client's side, which any zero-copy body
// needs to be free.
const (
	// CopyReasonClientTLS: the client connection is TLS, so the bytes are
	// encrypted in user space.
	CopyReasonClientTLS CopyReason = "client_tls"
	// CopyReasonClientHTTP2: the client speaks HTTP/2, which frames the
	// body in user space.
	CopyReasonClientHTTP2 CopyReason = "client_http2"
	// CopyReasonNoReadFrom: a ResponseWriter wrapper hides io.ReaderFrom.
	CopyReasonNoReadFrom CopyReason = "no_readfrom"
	// CopyReasonEncoded: a middleware changed the Content-Encoding (it
	// compresses on the fly).
	CopyReasonEncoded CopyReason = "encoded"
	// CopyReasonLengthChanged: the Content-Length sent differs from the
	// body's own.
	CopyReasonLengthChanged CopyReason = "length_changed"
)

// Why a proxied body was copied: on the upstream's side, or in how
// httputil.ReverseProxy was set up.
const (
	// CopyReasonTransport: the ReverseProxy's Transport is not a
	// *proxy.Transport.
	CopyReasonTransport CopyReason = "transport"
	// CopyReasonUpstreamTLS: not an http:// upstream (https: TLS, maybe
	// HTTP/2).
	CopyReasonUpstreamTLS CopyReason = "upstream_tls"
	// CopyReasonUpgrade: a protocol upgrade (WebSocket), with bytes both
	// ways.
	CopyReasonUpgrade CopyReason = "upgrade"
	// CopyReasonForwardProxy: the request went through a forward proxy
	// (HTTP_PROXY).
	CopyReasonForwardProxy CopyReason = "forward_proxy"
	// CopyReasonChunked: the upstream sent the body chunked.
	CopyReasonChunked CopyReason = "chunked"
	// CopyReasonUnknownLength: the upstream sent no Content-Length; the
	// body ends when it closes the connection.
	CopyReasonUnknownLength CopyReason = "unknown_length"
	// CopyReasonUpstreamConn: the Transport's DialContext returned something
	// other than a *net.TCPConn.
	CopyReasonUpstreamConn CopyReason = "upstream_conn"
	// CopyReasonBodyReplaced: the ReverseProxy's ModifyResponse replaced
	// the body.
	CopyReasonBodyReplaced CopyReason = "body_replaced"
	// CopyReasonFlushInterval: ReverseProxy flushes this response as it
	// copies (its FlushInterval is not zero, or the body is a
	// text/event-stream), from a timer of its own that may call Flush while
	// a splice writes; so the body goes through its copy and flushes.
	CopyReasonFlushInterval CopyReason = "flush_interval"
)
