package handlers

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
)

// serveMultipart sends ranges of c as a multipart/byteranges 206 response
// (RFC 9110, section 14.6), without a pipe or goroutine.
//
// mime/multipart.Writer writes the framing: CreatePart writes each part's
// boundary and header fields to w with Write, and Close the closing
// boundary. The part's bytes do not go through the part writer (that would
// be a plain Write, copied through user space): they go to w itself with
// io.CopyN(w, f, length), which reaches w's ReadFrom, and so sendfile(2), as
// an *io.LimitedReader around the *os.File. The part writer adds nothing to
// the bytes written to it, so the body is the one the library would write.
//
// The Content-Length is exact and set before the first byte: the same
// framing is first rendered, with the same boundary, into a counter.
func serveMultipart(w http.ResponseWriter, r *http.Request, c *content, ctype string, ranges []byteRange) {
	var n counter
	mw := multipart.NewWriter(&n) // chooses a random boundary
	boundary := mw.Boundary()
	if err := writeFraming(mw, nil, ctype, ranges, c.size, nil); err != nil {
		serveError(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	length := int64(n)
	for _, ra := range ranges {
		length += ra.length
	}

	h := w.Header()
	h.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	h.Set("Accept-Ranges", "bytes")
	c.setEncodingAndLength(h, length)
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return
	}
	mw = multipart.NewWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return // cannot happen: the boundary is the library's own
	}
	noteCopy(w, r, c)
	// On an error the body stops short of its Content-Length, so net/http
	// closes the connection and the client sees the truncation.
	writeFraming(mw, w, ctype, ranges, c.size, c.f)
}

// writeFraming writes the parts of a multipart/byteranges body to mw: for
// each range, its header (Content-Range, and the representation's
// Content-Type when it has one, as section 14.6 asks) and then, when f is
// not nil, its bytes, copied from f straight to body (the writer under mw).
func writeFraming(mw *multipart.Writer, body io.Writer, ctype string, ranges []byteRange, size int64, f io.ReadSeeker) error {
	hdr := make(textproto.MIMEHeader, 2)
	if ctype != "" {
		// Response header values have CR and LF replaced when net/http
		// writes them; do the same here, where mime/multipart would write
		// them as they are.
		hdr["Content-Type"] = []string{crlfToSpace.Replace(ctype)}
	}
	for _, ra := range ranges {
		hdr["Content-Range"] = []string{contentRange(ra, size)}
		if _, err := mw.CreatePart(hdr); err != nil {
			return err
		}
		if f == nil {
			continue
		}
		if _, err := f.Seek(ra.start, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(body, f, ra.length); err != nil {
			return err
		}
	}
	return mw.Close()
}

// crlfToSpace replaces CR and LF, which would end a header line.
var crlfToSpace = strings.NewReplacer("\r", " ", "\n", " ")

// counter is an io.Writer that counts what is written to it.
type counter int64

func (c *counter) Write(p []byte) (int, error) {
	*c += counter(len(p))
	return len(p), nil
}
