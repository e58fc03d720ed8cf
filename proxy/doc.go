// Package proxy is a reverse proxy whose response bodies go from the
// upstream socket to the client socket by splice(2): [ReverseProxy] serves
// with an httputil.ReverseProxy's semantics, [Transport] is the HTTP/1.1
// client it reaches plain-http upstreams through (whose round trip fails
// with [ErrResponseHeaderTimeout] when a head is late), and [BodyKey],
// [CopyReasonKey] and [UpstreamErrorKey] say on the request's span how each
// body went.
//
// # Usage
//
// Give ReverseProxy the httputil.ReverseProxy you would have served, and
// serve through middleware.Listener so the spliced bytes are counted:
//
//	target, err := url.Parse("http://127.0.0.1:8081")
//	...
//	tr := &proxy.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 30 * time.Second}
//	defer tr.CloseIdleConnections()
//	h := proxy.ReverseProxy(&httputil.ReverseProxy{
//		Rewrite: func(pr *httputil.ProxyRequest) {
//			pr.SetURL(target)
//			pr.SetXForwarded()
//		},
//		Transport: tr,
//	})
//	srv := &http.Server{Handler: middleware.Tracing()(middleware.Logger(nil)(h))}
//	srv.Serve(middleware.Listener(ln))
//
// # How a body is spliced
//
// [ReverseProxy] leaves every rule of the ReverseProxy it is given to that
// ReverseProxy, and changes only how a body with a Content-Length from a
// plain-http HTTP/1.x upstream reaches the client. The handler runs a
// shallow copy of the ReverseProxy with this package's [Transport] as its
// Transport and a ModifyResponse (run after yours) that marks the response
// it is about to copy. The transport reads each response head by peeking at
// the socket and consuming exactly the head, so no body byte is read into
// user space, and returns the body still in the socket. When ReverseProxy's
// copy loop first reads that body, it hands the client ResponseWriter's
// ReadFrom the upstream socket with the remaining length; net/http passes it
// down to the client connection, where (with middleware.Listener) fastpath's
// connection splices it through a pipe of its own and counts the bytes (see
// "Pipes"), or (without) the runtime's (*net.TCPConn).ReadFrom splices it
// from an *io.LimitedReader. The read then reports EOF: ReverseProxy sees no
// bytes, finishes as for any body, and every header rule stays its own. A
// response without a Content-Type gets the one net/http sniffs, as through
// ReverseProxy alone: net/http writes the first 512 bytes itself to sniff
// it, and the rest is spliced; a response with one has its head flushed
// first, so that every byte is spliced.
//
// # What keeps the splice
//
// rp.Transport nil (a shared Transport) or a *Transport; an http://
// upstream, not upgraded, not sent through an HTTP_PROXY; a Content-Length
// body; a plain TCP HTTP/1.x client; and every ResponseWriter wrapper
// between the server and the proxy keeping io.ReaderFrom and the upstream's
// Content-Length and Content-Encoding. Anything else is copied, correctly,
// and the span in the request context says so: [BodyKey] is "splice" or
// "copy" and, for a copy, [CopyReasonKey] is the [middleware.CopyReason]
// that stood in the way (the closed set, each value explained, is in
// package middleware). A response ReverseProxy flushes as it copies
// (rp.FlushInterval not zero, or a text/event-stream body) is copied,
// middleware.CopyReasonFlushInterval: ReverseProxy's flush timer calls
// Flush from a goroutine of its own, which must not run beside a splice
// into the same ResponseWriter. Whether the kernel spliced, and how much,
// is middleware's fastpath.response.splice.size. Bodies that are all head
// (HEAD, 204, 304, Content-Length: 0) carry neither attribute.
//
// # Pipes
//
// With middleware.Listener, each spliced body passes through a kernel pipe
// (upstream socket to pipe, pipe to client socket) that the connection
// takes from a pool of the process, sized to what the kernel allows the
// process's user and closed when idle. What it allows is read once, at the
// first splice: fs.pipe-max-size (the largest pipe, 1 MiB by default), and,
// for a process without CAP_SYS_ADMIN or CAP_SYS_RESOURCE (not root, in
// most deployments), fs.pipe-user-pages-soft and -hard, which cap the pipes
// of every process of the user together (64 MiB by default; past it the
// kernel makes 8 KiB pipes). Such a process's pipes hold at most seven
// eighths of that; the size the kernel gave is always read back, never
// assumed.
//
// A body starts through 64 KiB (the kernel's default pipe) and the size
// doubles while the upstream fills the pipe and the client takes it at
// once, up to 1 MiB, and within an equal share of three quarters of the
// budget among the bodies in flight; a body whose client makes it wait (a
// slow client) stays small, and gives its pages back when the budget runs
// short. So 300 downloads at once as a plain user each get 128 KiB, and
// slow clients do not take the pipes the fast ones need. A pipe no body
// has used for a second is closed by a timer: nothing is left to garbage
// collection, and no goroutine runs for an idle pool.
//
// A spliced body holds four descriptors (two sockets, two pipe ends) where
// a copied one holds two. Once the descriptors in use pass half of
// RLIMIT_NOFILE, every pipe is closed, those of bodies under way included
// (the rest of each is copied), and none is made until the load has
// halved; refused a descriptor (EMFILE), the listener's accept and
// Transport's dial close every pipe and try again. So splicing never makes
// the server refuse a connection, or fail a dial, that
// httputil.ReverseProxy would serve.
//
// A body that gets no pipe, or loses it, is copied from there on, and
// [CopyReasonKey] says why: middleware.CopyReasonPipeSmall (the kernel made
// a pipe under 32 KiB, which takes more system calls than the copy: the
// user's pipe pages are spent, by this process or another),
// middleware.CopyReasonPipeBudget (this process's pipes hold its share),
// middleware.CopyReasonPipeDescriptors (half of the descriptors are in
// use) or middleware.CopyReasonPipeFailed (pipe2 failed). Without
// middleware.Listener the runtime splices through pipes of its own, which
// it sizes to 1 MiB whatever the kernel allows and keeps until garbage
// collections: use Listener.
//
// # Upstream connections
//
// Transport pools connections per host and port like http.Transport (see
// its fields for the limits and timeouts; dials and waits are bounded by
// the request context, whose cancellation closes the connection). A
// connection goes back to the pool only when its body went out exactly to
// its Content-Length (or a chunked body to its end with nothing read past
// it), the upstream did not say Connection: close, the request was written
// whole and nothing canceled it; before a pooled connection is reused, and
// before it is pooled, a non-blocking peek makes sure the upstream has not
// closed it or sent stray bytes (a body longer than its Content-Length), so
// a lying upstream never bleeds into the next response; a connection that
// cannot be peeked at (a DialContext's own net.Conn without a descriptor)
// is never reused. A request without a body, with a method RFC 9110 makes
// idempotent, that fails on a reused connection before any response byte
// arrives is sent once more on a new connection. A request whose body
// cannot be written ends its round trip at once, unless the upstream's
// answer has begun to arrive (then that answer is used); either way the
// connection is closed.
//
// # Failures
//
// A client that leaves mid-body ends the splice; the upstream connection
// is closed, and middleware records client_aborted with the bytes that got
// out. The body's Read then reports context.Canceled, which ReverseProxy
// takes for the client's departure, as when its own write to a client
// fails: its ErrorLog says nothing and it aborts the handler. An upstream
// that closes, resets or times out mid-body makes the body's Read fail:
// ReverseProxy logs it ("read error during body copy") and aborts the
// response with http.ErrAbortHandler, net/http closes the client
// connection (the client sees the body cut, never a short body passed off
// as whole), middleware records handler_aborted, and the span gets the
// error (an exception event) and [UpstreamErrorKey] ("closed", "reset" or
// "timeout"). Without middleware.Listener the runtime reports a failure of
// either socket as the ReadFrom's own: a peek at the upstream socket tells
// ReverseProxy and the span whose it was, but middleware, which sees the
// ReadFrom's error, records an upstream reset mid-splice as the client's
// (client_aborted); with Listener the two are told apart everywhere.
// Malformed response heads, heads above MaxResponseHeaderBytes, a 101
// nobody asked for and a dial or header timeout ([ErrResponseHeaderTimeout],
// a net.Error timeout) are errors of the round trip: ReverseProxy's
// ErrorHandler answers (502 by default). The upstream error "timeout" means
// a deadline on the upstream connection passed (one a DialContext set, say)
// or the kernel timed the upstream out (ETIMEDOUT).
package proxy
