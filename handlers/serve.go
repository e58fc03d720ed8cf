package handlers

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fastpath-go/fastpath/internal/copynote"
)

// DefaultMaxRanges is the largest number of ranges a multi-range request may
// ask for before the whole file is sent instead (with 200 OK, as RFC 9110,
// section 14.2 allows). Each part costs a header of about a hundred bytes,
// so an unbounded count lets a short request for one-byte ranges amplify the
// response many times over. Apache httpd's MaxRanges default is 200.
const DefaultMaxRanges = 100

// ServeContent replies to r with the contents of f, with the semantics of
// [http.ServeContent] (preconditions, ranges, HEAD), and keeps the response
// body on the sendfile(2) path, multi-range requests included.
//
// It is meant for handlers that open the file to send themselves (a download
// API, say): replace http.ServeContent(w, r, name, modtime, f) with
// ServeContent(w, r, name, modtime, f). name is used only for its extension,
// to choose the Content-Type when w has none (else the first 512 bytes are
// sniffed); modtime is sent as Last-Modified unless it is zero or the Unix
// epoch, and is used for If-Modified-Since, If-Unmodified-Since and If-Range.
// f is served from offset 0; ServeContent neither closes it nor leaves its
// offset anywhere in particular.
//
// Unless w's header map already has an Etag key (set it to nil to send no
// ETag), ServeContent sets a strong ETag derived from f's size and
// modification time, as [FileServer] does. Every response is written here,
// with each precondition evaluated once; the package documentation lists
// where the answers differ from http.ServeContent's and the RFC 9110 rule
// behind each difference. As with http.ServeContent, a Content-Encoding
// already set on w means the body is encoded on the way out, so no
// Content-Length is sent. When f is not a regular file, ServeContent is
// exactly http.ServeContent.
func ServeContent(w http.ResponseWriter, r *http.Request, name string, modtime time.Time, f *os.File) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.ServeContent(w, r, name, modtime, f)
		return
	}
	h := w.Header()
	if _, ok := h["Etag"]; !ok {
		h["Etag"] = []string{makeETag(fi, "")}
	}
	serveFile(w, r, &content{
		f:         f,
		size:      fi.Size(),
		modtime:   modtime,
		name:      name,
		typeOf:    f,
		maxRanges: DefaultMaxRanges,
	})
}

// makeETag returns a strong entity tag derived from fi's modification time
// (seconds and nanoseconds) and size, like nginx's, plus the content coding
// for a precompressed sidecar, so the encoded representation's tag never
// equals the original's. It costs no I/O beyond the stat already done.
func makeETag(fi fs.FileInfo, encoding string) string {
	mt := fi.ModTime()
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = strconv.AppendInt(b, mt.Unix(), 16)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(mt.Nanosecond()), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 16)
	if encoding != "" {
		b = append(b, '-')
		b = append(b, encoding...)
	}
	b = append(b, '"')
	return string(b)
}

// content is a representation to send: a regular file and what the
// response says about it.
type content struct {
	f        *os.File
	size     int64
	modtime  time.Time
	name     string   // its extension chooses the Content-Type
	encoding string   // the content coding of f's bytes, "" for none
	typeOf   *os.File // sniffed for the Content-Type when name says nothing
	// maxRanges bounds the ranges of a multi-range request; <= 0: none.
	maxRanges int
	// atStart says f's offset is 0 (it was just opened, and sniffing reads
	// with ReadAt), so a body from the start needs no lseek(2).
	atStart bool
}

// serveFile answers r with c. The caller has set the response's other
// header fields (ETag, Cache-Control, Vary...).
//
// Every status is decided and written here: 304 and 412 from the
// preconditions, then 416, 206 or 200 from If-Range and Range. A body goes
// out with io.CopyN(w, f, n) after a Seek, which hands w's ReadFrom an
// *io.LimitedReader around the *os.File, so net/http passes it on to
// sendfile(2).
func serveFile(w http.ResponseWriter, r *http.Request, c *content) {
	h := w.Header()
	setLastModified(h, c.modtime)
	v := newValidators(h, c.modtime)
	switch v.evalPreconditions(r) {
	case http.StatusNotModified:
		writeNotModified(w)
		return
	case http.StatusPreconditionFailed:
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}

	var (
		ranges  []byteRange
		verdict = rangeIgnore
	)
	// Range is defined for GET only (RFC 9110, section 14.2: a server must
	// ignore it for other methods); HEAD answers as GET would (section
	// 9.3.2). If-Range matters only when there is a Range (section
	// 13.1.5), and a false one means the whole representation (section
	// 13.2.2, step 5).
	if value, n := singletonField(r.Header, "Range"); n > 0 && isSafeRead(r.Method) && v.ifRange(r.Header) {
		if n > 1 {
			verdict = rangeInvalid // a singleton field sent twice (section 5.3)
		} else {
			ranges, verdict = parseRange(value, c.size, c.maxRanges)
		}
	}
	switch verdict {
	case rangeInvalid, rangeUnsatisfiable:
		// 416 (section 15.5.17) with the current length, so the client
		// learns what it may ask for (section 14.4).
		h.Set("Content-Range", unsatisfiedRange(c.size))
		msg := "invalid range"
		if verdict == rangeUnsatisfiable {
			msg = "invalid range: failed to overlap"
		}
		serveError(w, msg, http.StatusRequestedRangeNotSatisfiable)
		return
	}

	ctype := c.contentType(h)
	if len(ranges) > 1 {
		serveMultipart(w, r, c, ctype, ranges)
		return
	}

	status, start, length := http.StatusOK, int64(0), c.size
	if len(ranges) == 1 {
		// A single part is sent as it is, never as multipart (section
		// 15.3.7.2), with its Content-Range (section 14.4).
		status, start, length = http.StatusPartialContent, ranges[0].start, ranges[0].length
		h.Set("Content-Range", contentRange(ranges[0], c.size))
	}
	h.Set("Accept-Ranges", "bytes")
	c.setEncodingAndLength(h, length)
	if err := c.seek(start); err != nil {
		delete(h, "Content-Range")
		delete(h, "Accept-Ranges")
		if c.encoding != "" {
			delete(h, "Content-Encoding") // this package's, for the file
		}
		serveError(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		noteCopy(w, r, c)
		// A short copy leaves the body below its Content-Length, so net/http
		// closes the connection and the client sees the truncation.
		io.CopyN(w, c.f, length)
	}
}

// noteCopy tells a fastpath middleware recording r that c's body is handed
// to w with io.Copy, when w may not take it to sendfile: w lacks
// io.ReaderFrom, carries a Content-Encoding this package did not set (a
// middleware compressing on the fly, which may keep ReadFrom and copy in
// it), or is a wrapper above the middleware's own writer, whose ReadFrom may
// copy. The middleware then names the reason, and the wrapper to blame when
// it can. For the middleware's own writer or net/http's (no Unwrap), the
// fast path, this is two type assertions and a header lookup.
func noteCopy(w http.ResponseWriter, r *http.Request, c *content) {
	_, rf := w.(io.ReaderFrom)
	_, own := w.(copynote.Own)
	_, wrapper := w.(interface{ Unwrap() http.ResponseWriter })
	ce := w.Header()["Content-Encoding"]
	if rf && (own || !wrapper) && (len(ce) == 0 || strings.EqualFold(ce[0], c.encoding)) {
		return
	}
	if rec := copynote.From(r.Context()); rec != nil {
		rec.FileBody(w, c.encoding)
	}
}

// seek moves f's offset to off, with no system call when it is known to be
// there already.
func (c *content) seek(off int64) error {
	if off == 0 && c.atStart {
		return nil
	}
	_, err := c.f.Seek(off, io.SeekStart)
	return err
}

// contentType returns the media type of the representation. An existing
// Content-Type key in h wins, even with no value (which sends none), as with
// http.ServeContent; then name's extension; then the first 512 bytes of
// typeOf, as http.DetectContentType sees them. A type that was not there
// before is set in h.
func (c *content) contentType(h http.Header) string {
	if v, ok := h["Content-Type"]; ok {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	ctype := typeByName(c.name)
	if ctype == "" {
		ctype = sniffType(c.typeOf)
	}
	h.Set("Content-Type", ctype)
	return ctype
}

// setEncodingAndLength sets Content-Encoding for a precompressed
// representation and Content-Length to n. A Content-Encoding that the
// caller set means the writer encodes on the fly, so the length is not
// known: none is sent then, as http.ServeContent does.
func (c *content) setEncodingAndLength(h http.Header, n int64) {
	switch {
	case c.encoding != "":
		h.Set("Content-Encoding", c.encoding)
	case h.Get("Content-Encoding") != "":
		return
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
}

// writeNotModified answers 304 (RFC 9110, section 15.4.5): the fields a 200
// would carry that update a cache (ETag, Vary, Cache-Control...) stay, the
// representation's metadata go, and so does Last-Modified when there is an
// ETag, which is the better validator.
func writeNotModified(w http.ResponseWriter) {
	h := w.Header()
	delete(h, "Content-Type")
	delete(h, "Content-Length")
	delete(h, "Content-Encoding")
	if h.Get("Etag") != "" {
		delete(h, "Last-Modified")
	}
	w.WriteHeader(http.StatusNotModified)
}

// serveError answers with a plain-text error, after removing the fields
// that describe the representation, which the error is not. A
// Content-Encoding stays: this package sets its own only on 200 and 206, so
// one here is a compressing writer's, which encodes the error too (as
// http.Error leaves it since Go 1.23).
func serveError(w http.ResponseWriter, text string, code int) {
	h := w.Header()
	for _, k := range []string{"Cache-Control", "Etag", "Last-Modified"} {
		delete(h, k)
	}
	http.Error(w, text, code)
}
