package middleware

// CopyReason is why a response body that could have gone zero-copy (by
// sendfile(2) from a file, or splice(2) from an upstream socket) was copied
// through user space instead. Its values are a closed set, the constants
// below, and this is the one place that documents them.
//
// Logger and Tracing record it as fastpath.response.copy_reason (CopyReasonKey)
// and, where a ResponseWriter wrapper is to blame, that wrapper's Go type as
// fastpath.response.copy_wrapper (CopyWrapperKey); Metrics records the bytes
// copied by reason (CopiedSizeMetric). See "Why a body was copied" in the
// package documentation for what fastpath can know, and when it says nothing.
type CopyReason string

// Keys and the metric of the copy diagnosis.
const (
	// CopyReasonKey holds the CopyReason of a response body that was
	// copied, in log records, on spans and as a metric attribute.
	CopyReasonKey = "fastpath.response.copy_reason"
	// CopyWrapperKey holds the Go type of the ResponseWriter wrapper that
	// hides io.ReaderFrom, such as
	// "*middleware.compressResponseWriter from github.com/go-chi/chi/v5/middleware",
	// in log records and on spans only: a type does not belong in a metric.
	CopyWrapperKey = "fastpath.response.copy_wrapper"
	// CopiedSizeMetric is the name of the histogram of response body bytes
	// copied through user space that could have gone zero-copy (the body
	// less the bytes that did, and less the first 512, which net/http
	// always writes itself), with CopyReasonKey among its attributes.
	// Recorded only for such bodies, so its count is the number of copied
	// responses.
	CopiedSizeMetric = "fastpath.server.response.copied.size"
)

// Why a body was not zero-copy though it was not lost: recorded in logs and
// spans, never counted as a copy.
const (
	// CopyReasonSmallBody: the body is at most 512 bytes, which net/http
	// writes itself (it sniffs a Content-Type from them) before it hands
	// anything to sendfile or splice. Not a loss: nothing can send such a
	// body zero-copy through net/http.
	CopyReasonSmallBody CopyReason = "small_body"
)

// Why a file body was copied.
const (
	// CopyReasonNotFile: the body handed to the ResponseWriter is not an
	// *os.File: a file of an embed.FS or another fs.FS, a bytes.Reader, a
	// buffer. Serve files from disk (os.Root) to keep sendfile.
	CopyReasonNotFile CopyReason = "not_file"
	// CopyReasonNotRegularFile: an *os.File that is not a regular file (a
	// pipe, a device, a file system that refuses sendfile).
	CopyReasonNotRegularFile CopyReason = "not_regular_file"
	// CopyReasonMultiRange: net/http's own multi-range response
	// (http.ServeContent or http.FileServer answering several ranges),
	// which it copies through an io.Pipe. handlers.FileServer and
	// handlers.ServeContent send each part by sendfile.
	CopyReasonMultiRange CopyReason = "multirange"
)

// Why a body was copied: on the client's side, which any zero-copy body
// needs to be free.
const (
	// CopyReasonClientTLS: the client connection is TLS, so the bytes are
	// encrypted in user space.
	CopyReasonClientTLS CopyReason = "client_tls"
	// CopyReasonClientHTTP2: the client speaks HTTP/2, which frames the
	// body in user space.
	CopyReasonClientHTTP2 CopyReason = "client_http2"
	// CopyReasonNoReadFrom: a ResponseWriter wrapper hides io.ReaderFrom,
	// or has it and copies in it (httplog logging bodies, say); its type is
	// recorded under CopyWrapperKey.
	CopyReasonNoReadFrom CopyReason = "no_readfrom"
	// CopyReasonEncoded: a middleware set a Content-Encoding the handler
	// did not encode (it compresses on the fly).
	CopyReasonEncoded CopyReason = "encoded"
	// CopyReasonLengthChanged: the Content-Length sent differs from the
	// body's own.
	CopyReasonLengthChanged CopyReason = "length_changed"
	// CopyReasonChunked: the response has no Content-Length, so net/http
	// sends it chunked, which it frames itself: a file written with io.Copy
	// without setting one, or an upstream that sent its body chunked.
	CopyReasonChunked CopyReason = "chunked"
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

// Why a proxied body was copied for want of a pipe to splice it through, on
// the client connection of middleware.Listener (how the proxy's pipes are
// sized and bounded is in package github.com/fastpath-go/fastpath/proxy,
// "Pipes"). A body copied from some point on, after its pipe was given up,
// carries the reason too: the splice size says how much went by splice.
const (
	// CopyReasonPipeSmall: the kernel would make only a pipe smaller than
	// 32 KiB, which takes more system calls than the copy: the user's pipe
	// pages (fs.pipe-user-pages-soft) are spent, by this process or
	// another of the same user.
	CopyReasonPipeSmall CopyReason = "pipe_small"
	// CopyReasonPipeBudget: the pipes in use hold the process's share of
	// the user's pipe pages (fs.pipe-user-pages-soft and -hard).
	CopyReasonPipeBudget CopyReason = "pipe_budget"
	// CopyReasonPipeDescriptors: the descriptors in use are past half of
	// RLIMIT_NOFILE (ulimit -n), which is kept for connections.
	CopyReasonPipeDescriptors CopyReason = "pipe_descriptors"
	// CopyReasonPipeFailed: the kernel refused to make a pipe (pipe2(2)
	// failed: EMFILE, ENFILE or ENOMEM).
	CopyReasonPipeFailed CopyReason = "pipe_failed"
)
