// Package handlers serves files over HTTP without leaving the kernel's
// sendfile(2) fast path, with the semantics of net/http's http.ServeContent.
//
// # Usage
//
// Serve a directory tree with [FileServer], confined to an [os.Root]:
//
//	root, err := os.OpenRoot("/srv/static")
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer root.Close()
//	mux := http.NewServeMux()
//	mux.Handle("/static/", http.StripPrefix("/static/",
//		handlers.FileServer(root, handlers.WithCacheControl("public, max-age=3600"))))
//
// In chi: r.Handle("/files/*", http.StripPrefix("/files/", handlers.FileServer(root))).
//
// A handler that opens the file itself (a download API, say) calls
// [ServeContent] where it would call http.ServeContent, and [SetAttachment]
// to have the client save the response under a given name:
//
//	f, err := os.Open(path)
//	...
//	defer f.Close()
//	handlers.SetAttachment(w.Header(), displayName)
//	handlers.ServeContent(w, r, displayName, modTime, f)
//
// # What keeps sendfile
//
// net/http's ResponseWriter hands io.Copy's source to *net.TCPConn.ReadFrom,
// which uses sendfile(2) when the source is an *os.File or an
// *io.LimitedReader around one, and the response has a Content-Length (a
// chunked response never uses it). This package always gives
// http.ServeContent the *os.File itself, so both hold. (net/http copies the
// first 512 bytes of a body with write(2) before it switches to sendfile, so
// it can sniff a Content-Type; that is unchanged.) The one case
// http.ServeContent cannot keep on the fast path is a multi-range request,
// which it answers through an io.Pipe and a goroutine; this package answers
// those itself (see Multi-range requests). Precompressed files also keep
// their Content-Length (see Precompressed files).
//
// Anything that wraps the ResponseWriter between the server and these
// handlers (a logging or metrics middleware, say) must itself implement
// io.ReaderFrom and pass the source through unchanged, or the body is copied
// through user space.
//
// # Security model
//
// [FileServer] serves r.URL.Path below its root and nothing else. A path is
// refused with 404 unless it is a plain downward path: an empty element
// ("//"), a "." or ".." element (whether sent literally or as %2e%2e, and
// with "..%2f" decoding to "../"), a backslash, a NUL byte, a name the
// operating system reserves, or, unless [WithDotfiles], an element starting
// with "." (".env", ".git/config", and sidecars of those) answers 404.
// Symbolic links are followed only while they stay within the root: os.Root
// refuses the others, and they answer 404 too. (The dotfile rule is about
// request paths: a symbolic link the operator placed in the root is served
// whatever its target's name.)
//
// Every refusal, missing file, directory without index or listing, device,
// FIFO or socket answers 404 with the body "404 page not found\n"; resource
// errors (too many open files, I/O errors) answer 500. No response body ever
// contains a file system path or an operating system error. FIFOs are opened
// non-blocking, so one cannot hang a request. Only GET and HEAD are served;
// other methods get 405 with "Allow: GET, HEAD". The redirect that adds a
// directory's trailing slash (only with [WithIndex] or
// [WithDirectoryListing]) is a relative "./name/" Location, which cannot
// point at another host.
//
// When the files come from users, add [WithAttachments], so a browser
// downloads an uploaded HTML or SVG file instead of rendering it in your
// origin.
//
// # Precompressed files
//
// When the client accepts br, zstd or gzip (Accept-Encoding, with q-values:
// q=0 refuses a coding, "*" covers unlisted ones, "x-gzip" means gzip), and
// name.br, name.zst or name.gz is a regular file beside name, [FileServer]
// serves that sidecar instead, with Content-Encoding set. The client's
// weights decide first and the server's preference br, zstd, gzip (see
// [WithEncodings]) breaks ties. The original must exist: its extension, or
// else its first 512 bytes, give the Content-Type; the sidecar's own size and
// modification time, plus the coding, give its ETag and Last-Modified, so the
// encoded and identity representations never share a validator. Ranges apply
// to the encoded bytes, as HTTP specifies. Every response for a regular file
// carries "Vary: Accept-Encoding" (unless WithEncodings() turned sidecars
// off), since a sidecar may appear at any time. Nothing is compressed on the
// fly, and a sidecar is trusted to hold the original's content: the server
// does not compare them. A request for /a.txt.gz itself serves that file as
// an ordinary file, without Content-Encoding.
//
// http.ServeContent omits Content-Length when Content-Encoding is already
// set (to allow for writers that compress on the fly), which would make the
// response chunked; this package adds Content-Encoding as the 200 or 206
// header is written instead, so the Content-Length stays.
//
// # Multi-range requests
//
// A request that http.ServeContent would answer with a multipart/byteranges
// 206 (preconditions and If-Range pass, two or more satisfiable ranges, their
// total no larger than the file) gets the same status, headers and body up
// to the random boundary, built without a pipe or goroutine: each part's
// header is written with Write and each part's bytes with
// io.CopyN(w, file, length), which reaches ReadFrom and sendfile(2). The
// Content-Length is computed exactly before the first byte is written. The
// preconditions are evaluated by a faithful port of net/http's
// checkPreconditions, used only to recognise these requests; every other
// response, including 304, 412 and 416, is http.ServeContent's own.
//
// # Slow clients
//
// [WithSendTimeout] cuts off a client that stops reading a file: the write
// deadline stays a fixed time ahead for as long as the transfer progresses
// (judged by the file's offset, which sendfile advances), so a long download
// on a slow link goes on while a stalled one fails. It works on Unix.
//
// # Limits
//
// A request for more than [DefaultMaxRanges] ranges (see [WithMaxRanges])
// gets the whole file with 200 OK, as RFC 9110 allows, because every part
// costs a header of about a hundred bytes. net/http's own checks still apply
// below the bound: a range set whose total exceeds the file gets 200 with the
// whole file, and overlapping ranges are sent as asked.
//
// Where this package deliberately differs from http.FileServer: a request
// for "/dir/index.html" is served rather than redirected to "/dir/"; a file
// requested with a trailing slash answers 404 rather than redirecting;
// permission errors answer 404 rather than 403; directories answer 404
// unless [WithIndex] or [WithDirectoryListing] is given; and a path that is
// not already clean ("/a/../b", "/a//b") answers 404 rather than being
// cleaned. ETags are strong and derived from the file's modification time
// and size, without reading the content; a file rewritten within the same
// nanosecond with the same size keeps its ETag.
//
// # Reverse proxy
//
// [ReverseProxy] wraps an httputil.ReverseProxy and keeps all it does
// (Rewrite or Director, ModifyResponse, ErrorHandler, hop-by-hop headers,
// X-Forwarded-*, trailers, 1xx, upgrades, FlushInterval) with one
// difference: a response body with a Content-Length from a plain-http
// HTTP/1.x upstream goes from the upstream socket to the client socket by
// splice(2), so the proxy never copies it.
//
// How: the handler runs a shallow copy of the ReverseProxy whose Transport is
// a [ProxyTransport] and whose ModifyResponse (after yours) marks the
// response it is about to copy. The transport reads each response head by
// peeking at the socket and consuming exactly the head, so no body byte is
// read into user space, and returns the body still in the socket. When
// ReverseProxy's copy loop first reads that body, it flushes the head and
// hands the client ResponseWriter's ReadFrom the upstream socket with the
// remaining length; net/http passes it down to the client connection, where
// (with middleware.Listener) fastpath's connection splices it and counts the
// bytes, or (without) the runtime's (*net.TCPConn).ReadFrom splices it from
// an *io.LimitedReader. The read then reports EOF: ReverseProxy sees no
// bytes, finishes as for any body, and every header rule stays its own.
//
// What keeps the splice: rp.Transport nil (a shared ProxyTransport) or a
// *ProxyTransport; an http:// upstream, not upgraded, not sent through an
// HTTP_PROXY; a Content-Length body; a plain TCP HTTP/1.x client; and every
// ResponseWriter wrapper between the server and the proxy keeping
// io.ReaderFrom and the upstream's Content-Length and Content-Encoding.
// Anything else is copied, correctly, and the span in the request context
// says so: fastpath.proxy.body ("splice" or "copy") and, for a copy,
// fastpath.proxy.copy_reason, one of the CopyReason values (transport,
// upstream_tls, upgrade, forward_proxy, chunked, unknown_length,
// upstream_conn, client_tls, client_http2, no_readfrom, encoded,
// length_changed, body_replaced). Whether the kernel spliced, and how much,
// is middleware's fastpath.response.splice.size. Bodies that are all head
// (HEAD, 204, 304, Content-Length: 0) carry neither attribute.
//
// # Upstream connections
//
// ProxyTransport pools connections per host and port like http.Transport
// (see its fields for the limits and timeouts; dials and waits are bounded
// by the request context, whose cancellation closes the connection). A
// connection goes back to the pool only when its body went out exactly to
// its Content-Length (or a chunked body to its end with nothing read past
// it), the upstream did not say Connection: close, the request was written
// whole and nothing canceled it; before a pooled connection is reused, and
// before it is pooled, a non-blocking peek makes sure the upstream has not
// closed it or sent stray bytes (a body longer than its Content-Length), so
// a lying upstream never bleeds into the next response. An idempotent
// request without a body that fails on a reused connection before any
// response byte arrives is sent once more on a new connection.
//
// # Failures
//
// A client that leaves mid-body ends the splice; the upstream connection
// is closed, and middleware records client_aborted with the bytes that got
// out. An upstream that closes, resets or times out mid-body makes the
// body's Read fail: ReverseProxy logs it and aborts the response with
// http.ErrAbortHandler, net/http closes the client connection (the client
// sees the body cut, never a short body passed off as whole), middleware
// records handler_aborted, and the span gets the error (an exception event)
// and fastpath.proxy.upstream_error ("closed", "reset" or "timeout").
// Without middleware.Listener the runtime reports a failure of either socket
// as the ReadFrom's own, so an upstream reset mid-splice is recorded as the
// client's (client_aborted); with Listener the two are told apart. Malformed
// response heads, heads above MaxResponseHeaderBytes, a 101 nobody asked for
// and a dial or header timeout are errors of the round trip: ReverseProxy's
// ErrorHandler answers (502 by default).
package handlers
