// Package middleware provides logging, metrics and tracing middleware for
// chi and net/http that keeps a file server on the kernel's zero-copy path, a
// Listener that measures how many bytes took it, SetAttributes for a
// handler's own values, and the closed sets its records use (ErrorType,
// CopyReason).
//
// Logger, Metrics and Tracing each have the shape func(http.Handler)
// http.Handler, so they mount with chi's r.Use or wrap any handler:
//
//	r := chi.NewRouter()
//	r.Use(middleware.Tracing(), middleware.Metrics(), middleware.Logger(nil))
//	r.Handle("/files/*", http.StripPrefix("/files/", files))
//	srv.Serve(middleware.Listener(ln))
//
// # The fast path
//
// http.ServeContent writes a file with io.CopyN, which reaches the
// ResponseWriter's ReadFrom method; net/http passes the file to
// (*net.TCPConn).ReadFrom, and the kernel's sendfile(2) sends it without
// copying it through user space. net/http first copies up to 512 bytes
// normally when the headers are not yet written (for content sniffing).
//
// Any wrapper that hides io.ReaderFrom turns that into 32 KiB read and write
// pairs: several times the CPU per byte. The fast path is also lost, whatever
// the middleware, when a response has no Content-Length (it is chunked), when
// it is compressed on the fly, over TLS and HTTP/2, and for net/http's
// multi-range responses (they go through an io.Pipe). Package handlers serves
// multi-range responses by sendfile too. Each such response says why (see
// "Why a body was copied").
//
// # One wrap per request
//
// The first fastpath middleware on a request wraps the ResponseWriter once,
// so the wrapped writer has exactly the optional interfaces of the one it
// wraps (io.ReaderFrom above all, and Flusher, Hijacker, Pusher,
// io.StringWriter) and http.ResponseController still reaches
// SetWriteDeadline and EnableFullDuplex. net/http's HTTP/1 writer, the one
// nearly every request has, gets a wrapper that lives inside the record and
// costs no allocation; every other writer is wrapped with httpsnoop.Wrap,
// which handles any combination of interfaces but allocates about twenty
// objects per request. Later fastpath middlewares on the same request find
// the record in the request context and do not wrap again.
//
// The record holds: the status (the first non-1xx WriteHeader, or 200 when the
// body is written first); the body bytes written through Write, WriteString
// and ReadFrom; the time to first byte and the duration; the request body
// bytes the handler read; whether and why the response was aborted; whether
// the connection was hijacked; a panic; and the route.
//
// # Status, aborts, hijacks and panics
//
// A response is aborted when it did not complete: the client went away
// before the handler returned (the request context was canceled) and before
// the body it declared was complete, a write failed, the body fell short of
// its Content-Length, or the handler panicked after the headers were sent or
// aborted on purpose. A client that closes the connection once it has the
// whole body, as curl does, has not aborted anything. This is the one
// definition the rest of the package refers to.
//
// An aborted response is recorded with the body bytes that did get out and
// an error.type that says why (the ErrorType constants; ErrorType lists
// every value error.type takes):
//
//	client_aborted   the client went away or reset the connection (a video
//	                 player seeking cancels its open range request)
//	send_timeout     a write missed its deadline: the server cut off a client
//	                 that stopped reading (handlers.WithSendTimeout)
//	write_error      a write failed otherwise (the server closed the
//	                 connection at shutdown, say)
//	short_body       the handler wrote less than its Content-Length (a file
//	                 truncated while it was sent, an upstream that died)
//	handler_aborted  panic(http.ErrAbortHandler) or runtime.Goexit
//	panic            any other panic
//
// A client that leaves is normal traffic on a download server: Logger logs
// it at Info and the span status stays unset. The others are the server's
// concern: Error (send_timeout: Warn), and span status Error. (net/http also
// cancels the request context when a client half-closes its side after
// sending the request; a streamed response without Content-Length to such a
// client is recorded as client_aborted.)
//
// A hijacked connection reports the status only when it can be observed: 101
// when the handler called WriteHeader(101) before hijacking. Otherwise
// http.response.status_code is left out; it is never a made-up 200.
//
// A panic is recorded as status 500 when no headers were sent (the real
// status when they were), with error.type "panic", and re-raised unchanged so
// an outer recoverer and net/http still see it. http.ErrAbortHandler stays
// itself and is recorded as "handler_aborted".
//
// # Routes
//
// http.route is read after the handler returns: chi's route pattern when a chi
// routing context is present, else the path of the http.ServeMux pattern
// (ServeMux sets Request.Pattern on the request it is given). It is never the
// raw path, so its cardinality stays bounded whatever clients send. Both
// placements work: mounted inside a chi router with r.Use, and wrapped around a
// chi router or a ServeMux from outside. From outside a chi router, the
// middleware must wrap the router itself (not another wrapper around it), as
// it supplies the router's routing context.
//
// For other routers, WithRoute takes the route from a function of the
// request; gorilla/mux, for one, keeps its matched route in the request it
// hands its middleware, so mount fastpath there with r.Use.
//
// # Adding to what is recorded
//
// SetAttributes, called from a handler, adds attributes of your own to the
// request's log record and span (an order id, a cache verdict). WithAttributes
// computes them from the request once the handler has returned, for the
// signal of each middleware given the option: the log record, the span, or
// every measurement (where each distinct value is a time series, so values
// must come from a small fixed set). WithSpanName names spans other than
// "{method} {route}".
//
// # Zero-copy accounting
//
// Serve through Listener to learn, per request, how many bytes the kernel sent
// with sendfile: fastpath.response.sendfile.size in logs and spans. Without
// Listener that value is unknown and left out, never guessed; over TLS in
// user space (crypto/tls) it is 0 either way, since nothing there can reach
// sendfile.
//
// A body proxied by proxy.ReverseProxy goes from the upstream socket to
// the client's by splice(2) instead; Listener counts those bytes too, as
// fastpath.response.splice.size (and the fastpath.server.response.splice.size
// histogram). Both are measured where the bytes reach the client's
// connection, so either is zero when a writer on the way hides
// io.ReaderFrom, and sendfile plus splice never exceed
// http.response.body.size, which stays the exact count of body bytes
// written however they went.
//
// # Why a body was copied
//
// When a body that could have gone zero-copy went through user space
// instead, Logger and Tracing record why, as fastpath.response.copy_reason (a
// CopyReason), and, when a ResponseWriter wrapper is to blame, its Go type
// and package as fastpath.response.copy_wrapper; Metrics records the bytes
// copied by reason (CopiedSizeMetric), so an alert can say which change lost
// the fast path. fastpath records a reason only where it knows one:
//
//   - the source its ReadFrom was handed: not an *os.File (an embed.FS file,
//     a buffer), net/http's multi-range io.Pipe, or a file with no
//     Content-Length, which net/http chunks;
//   - the request: TLS in user space (crypto/tls), HTTP/2;
//   - what handlers.FileServer, handlers.ServeContent and proxy.ReverseProxy
//     tell it: the writer they hand a file to lacks io.ReaderFrom, or keeps
//     it and copies (the file never reached fastpath's ReadFrom), a
//     middleware set a Content-Encoding they did not, or the proxy's own
//     reasons. The wrapper is found by following Unwrap, as
//     http.ResponseController does: the last writer without ReadFrom above
//     one that has it, or, when all have it, the wrappers in between (all
//     named when there are several; httpsnoop's, which mirror what they
//     wrap, never);
//   - with Listener, whether the connection's sendfile and splice counts
//     moved, whether a file that did not go is a regular one, and, for one
//     that is, the wrappers between fastpath and net/http whose ReadFrom
//     copied it.
//
// A handler of another library that copies a file through Write (below a
// wrapper that hides io.ReaderFrom, say) looks to fastpath like a handler
// writing bytes it made: fastpath then says nothing rather than guess. A
// body of at most 512 bytes, which net/http writes itself, is recorded as
// CopyReasonSmallBody in logs and spans but never counted as a copy; with
// Listener, a body that went zero-copy whole (the proxy flushes the head
// first, so even a small one does) has no reason at all. The
// diagnosis costs the fast path a field store and, with Listener, four
// atomic loads per ReadFrom; a copied response pays for the rest.
//
// # Kernel TLS
//
// With ktls.NewListener, a connection the kernel encrypts (kernel TLS) is
// not a *tls.Conn. net/http sets r.TLS from its ConnectionState when it is
// the connection served (ktls.NewListener outermost); beneath Listener's
// connection net/http leaves r.TLS nil, and the first fastpath middleware
// fills it in from the session. Either way the handler, the
// url.scheme (https) of every signal, and anything else reading r.TLS see
// the request as crypto/tls would have shown it. Log records and spans carry
// fastpath.tls.ktls (true, or false with fastpath.tls.ktls_fallback saying
// why, a ktls.Reason) for every connection ktls.NewListener accepted.
// Listener may wrap ktls.NewListener's listener or be wrapped by it: both
// count the sendfile bytes of kernel TLS connections, and both leave a
// *tls.Conn (a connection kept in crypto/tls) as net/http needs it.
//
// # OpenTelemetry
//
// Metrics records the HTTP server metrics of the OpenTelemetry semantic
// conventions (http.server.request.duration, which is stable, and
// http.server.active_requests, http.server.request.body.size and
// http.server.response.body.size, still in development) plus
// fastpath.server.response.sendfile.size and
// fastpath.server.response.splice.size;
// Tracing starts a server span per request, continuing the trace in the
// request's headers. Both use the global providers unless given
// WithMeterProvider, WithTracerProvider and WithPropagators. The package
// imports the OpenTelemetry API only: choose and configure the SDK in your
// main package.
//
// error.type (an ErrorType) is the same in logs, metrics and spans. A span's
// status is Error for 5xx responses and for every aborted response but
// client_aborted, which leaves it unset. Metrics and the span share the
// request's start and end instants, so the duration metric equals the
// span's duration.
//
// # Request ids and traces
//
// Logger adds chi's request id when chi's RequestID middleware runs before it,
// and trace_id and span_id when the request context holds a valid span, or
// when Tracing runs inside it. Metrics records with the context that holds the
// span, so exemplars link to it.
//
// # Client address
//
// client.address is the request's peer address (r.RemoteAddr, as a
// middleware before fastpath left it). WithTrustedProxy takes it from a proxy
// header instead, only for requests from proxies you name.
//
// # Performance considerations
//
// What fastpath adds is per request, never per byte: a file body still goes
// by sendfile, and the middleware sees only the ReadFrom call and its result.
// Per request, the one wrap and the shared record cost one allocation; the
// rest is the work the OpenTelemetry SDK and the slog handler do with what
// fastpath gives them (the README has figures, from go run ./tools/cmd/perreq).
// Metric attribute sets are cached per method, route, status and error
// type, so recording a measurement allocates nothing; span names are cached
// per method and route; a request gets one context and one Request copy
// however many fastpath middlewares it passes.
package middleware
