// Package handlers serves files over HTTP without leaving the kernel's
// sendfile(2) fast path, with the semantics of net/http's http.ServeContent
// where those follow RFC 9110 (see "Where this package differs"): a
// directory tree with [FileServer] (each [Option] a setting of it), a file
// the caller opened with [ServeContent], and a download's name with
// [Attachment] and [SetAttachment].
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
// chunked response never uses it). This package writes every response
// itself and sends every body, whole file, single range or each part of a
// multi-range response, with io.CopyN(w, f, n) after a Seek, so both hold.
// (net/http copies the first 512 bytes of a body with write(2) before it
// switches to sendfile, so it can sniff a Content-Type; that is unchanged.)
// Precompressed files keep their Content-Length too (see Precompressed
// files).
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
// [WithDirectoryListing]) is a relative Location made of the escaped names
// of the directory that was opened ("./a/b/" for a request for "/a%2Fb"),
// which cannot point at another host or another directory. A directory
// listing shows only entries a request would be served: not dotfiles
// (unless WithDotfiles), FIFOs, sockets, devices, or symbolic links that
// leave the root or lead to one of those. (A file the server may not read
// is still listed, and answers 404.)
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
// an ordinary file, without Content-Encoding. Content-Encoding is set only on
// 200 and 206 responses, with the encoded length as Content-Length.
//
// # Conditional and range requests
//
// The preconditions (RFC 9110, sections 13.1.1 to 13.1.5), in the order of
// section 13.2.2, entity-tag comparison (8.8.3.2), Range parsing and
// satisfiability (14.1.1, 14.1.2, 14.2) and the 206, 304, 412 and 416
// responses (14.4, 15.3.7, 15.4.5, 15.5.17) are this package's own code,
// written from the RFC; each rule names its section. Each precondition is
// evaluated once, and every response, 304 and 416 included, is written
// here: http.ServeContent is used only for files that are not regular.
// Validators are a strong ETag derived from the file's modification time
// and size, without reading the content (a file rewritten within the same
// nanosecond with the same size keeps its ETag), and Last-Modified, which
// has whole seconds; an If-Range date matches when it names the file's
// modification second, so a client that has only the date cannot tell two
// versions written within one second apart (one that has the ETag can).
//
// A request for two or more satisfiable ranges gets a multipart/byteranges
// 206 (section 14.6) whose framing mime/multipart.Writer writes (CreatePart
// for each part's header) and whose parts go straight to the ResponseWriter
// with io.CopyN, so each reaches ReadFrom and sendfile(2); nothing goes
// through a pipe or goroutine, as it does in http.ServeContent. The
// Content-Length is exact and set before the first byte: the framing is
// first rendered, with the same boundary, into a counter.
//
// # Where this package differs from http.ServeContent
//
// Where net/http follows the RFC, the answers are the same, to the byte
// (up to the random multipart boundary); the differential tests and the
// fuzz target FuzzServeContent check that against http.ServeContent and
// allow exactly these differences, each required or permitted by RFC 9110:
//
//  1. A suffix range of length 0 ("bytes=-0") is unsatisfiable (14.1.2): it
//     is left out of the set, and a set with nothing else satisfiable gets
//     416 with "Content-Range: bytes */size". net/http answers 206 with the
//     invalid "Content-Range: bytes size-(size-1)/size" and an empty body
//     (or empty parts).
//  2. A range unit other than bytes ("items=0-5") is ignored: 200 with the
//     whole file, as a server must (14.2). net/http answers 416.
//  3. Range unit names are case-insensitive (14.1): "Bytes=0-4" is a byte
//     range. net/http answers 416.
//  4. Range is ignored for methods other than GET and HEAD (14.2: range
//     handling is defined for GET only; HEAD answers as GET would, 9.3.2).
//     net/http answers a POST with 206.
//  5. An If-Match or If-None-Match value that is neither "*" nor a list of
//     entity tags ("\"a\" x", "\"a\", *") is a false If-Match and a true
//     If-None-Match (13.1.1 and 13.1.2, step 3: "otherwise"). net/http reads
//     tags up to the first error and treats "*" anywhere as "*".
//  6. If-Range must be exactly one entity tag or one HTTP-date (13.1.5): an
//     entity tag followed by anything else is false, so the whole file is
//     sent. net/http matches the tag and ignores the rest.
//  7. Every 416 carries "Content-Range: bytes */size" (14.4, 15.5.17), also
//     for an invalid Range. net/http sends it only when no range overlaps.
//  8. A range-spec must follow the grammar (14.1.1): whitespace inside it
//     ("0 - 1"), a sign ("+0-1") or a line break make the Range invalid, and
//     416 (14.2 lets a server reject an invalid Range). net/http trims
//     whitespace around the dash and accepts signs.
//  9. Positions and suffix lengths have no size limit (14.1.1 is 1*DIGIT):
//     a last-pos or suffix beyond 2^63-1 means "to the end", a first-pos
//     beyond it is unsatisfiable (14.1.2). net/http answers 416 invalid.
//  10. The ranges of an empty file are ignored: 200 with the empty body (no
//     byte range of an empty representation is satisfiable, 14.1.2, and a
//     server may ignore Range for one, 14.2). net/http does so too, except
//     for suffix ranges, which get 206 with "Content-Range: bytes 0--1/0".
//  11. More than [DefaultMaxRanges] (see [WithMaxRanges]) satisfiable ranges
//     get the whole file with 200 (14.2 lets a server ignore many small
//     ranges, a denial-of-service pattern, 17.15). net/http has no bound.
//  12. Repeated field lines (5.3): If-Match and If-None-Match lines are
//     combined into one list; Range, If-Range, If-Modified-Since and
//     If-Unmodified-Since take one value, so a second line makes Range
//     invalid (416), If-Range false, and the date fields ignored (13.1.3,
//     13.1.4: "more than one member"). net/http reads the first line only.
//  13. A representation without a date (modtime zero or the Unix epoch) has
//     no Last-Modified, so no If-Range date matches it (13.1.5). net/http
//     matches the epoch's date.
//  14. A part of a multipart/byteranges body carries Content-Type only when
//     the representation has one (14.6); net/http writes an empty
//     "Content-Type:" line when the caller suppressed the type.
//  15. Audio and video files get the types of nginx's mime.types (".webm" is
//     video/webm, ".ts" video/mp2t, ".m4a" audio/x-m4a...), whatever the
//     machine's mime.types says: Content-Type names the representation's
//     media type (8.3), and Go's table and the system's differ on these.
//  16. [ServeContent] sets a strong ETag derived from the file's size and
//     modification time unless the header already has an Etag key (8.8.3:
//     an origin server should send one); http.ServeContent sends none of
//     its own.
//
// # Slow clients
//
// [WithSendTimeout] cuts off a client that stops reading a file, however
// slowly a steady one reads; its documentation says how the client's
// progress is measured and how large the timeout should be.
//
// # Limits
//
// A request for more than [DefaultMaxRanges] ranges (see [WithMaxRanges])
// gets the whole file with 200 OK, because every part costs a header of
// about a hundred bytes; so does a set of ranges whose total exceeds the
// file (they overlap, and the whole costs less), as in net/http. Other
// overlapping ranges are sent as asked.
//
// Where this package deliberately differs from http.FileServer: a request
// for "/dir/index.html" is served rather than redirected to "/dir/"; a file
// requested with a trailing slash answers 404 rather than redirecting;
// permission errors answer 404 rather than 403; directories answer 404
// unless [WithIndex] or [WithDirectoryListing] is given; a path that is
// not already clean ("/a/../b", "/a//b") answers 404 rather than being
// cleaned; and a directory listing evaluates every precondition of RFC
// 9110, 13.2.2 (so If-None-Match makes it ignore If-Modified-Since, 13.1.3),
// not If-Modified-Since alone.
package handlers
