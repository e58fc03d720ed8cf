package handlers

import (
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/felixge/httpsnoop"
)

// DefaultMaxRanges is the largest number of ranges a multi-range request may
// ask for before the whole file is sent instead (with 200 OK, as RFC 9110,
// section 14.2 allows). Each part costs a header of about a hundred bytes,
// so an unbounded count lets a short request for one-byte ranges amplify the
// response many times over. Apache httpd's MaxRanges default is 200.
const DefaultMaxRanges = 100

// sniffLen is net/http's sniffLen: how many bytes DetectContentType looks at.
const sniffLen = 512

// ServeContent replies to r with the contents of f, like [http.ServeContent],
// and keeps the response body on the sendfile(2) path, multi-range requests
// included.
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
// modification time, as [FileServer] does. A request for two or more ranges
// is answered with a multipart/byteranges body whose parts all go through
// w's ReadFrom (see the package documentation); more than [DefaultMaxRanges]
// ranges get the whole file. Everything else is http.ServeContent's own
// behaviour. When f is not a regular file, ServeContent is exactly
// http.ServeContent.
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
	serveFile(w, r, name, modtime, f, fi.Size(), "", DefaultMaxRanges)
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

// serveFile answers r with f, a regular file of the given size whose
// response headers (ETag, Cache-Control, Vary, ...) the caller has set.
// encoding is the content coding of f's bytes ("" for none).
//
// A request that http.ServeContent would answer with a multipart/byteranges
// 206 is answered by serveMultipart; everything else goes to
// http.ServeContent with f itself, so the body reaches ReadFrom as an
// *io.LimitedReader around the *os.File.
func serveFile(w http.ResponseWriter, r *http.Request, name string, modtime time.Time, f *os.File, size int64, encoding string, maxRanges int) {
	if rh := r.Header.Get("Range"); rh != "" && strings.IndexByte(rh, ',') >= 0 {
		ranges, whole := multiRanges(w.Header(), r, modtime, size, maxRanges)
		switch {
		case ranges != nil:
			serveMultipart(w, r, name, modtime, f, size, encoding, ranges)
			return
		case whole:
			// Too many ranges: send the whole representation instead.
			r2 := new(http.Request)
			*r2 = *r
			r2.Header = r.Header.Clone()
			delete(r2.Header, "Range")
			r = r2
		}
	}
	if encoding != "" {
		w = withEncoding(w, encoding)
	}
	http.ServeContent(w, r, name, modtime, f)
}

// multiRanges reports the ranges to send as multipart/byteranges: non-nil
// exactly when http.ServeContent would send a multipart 206 for r (the
// preconditions pass, If-Range matches, two or more satisfiable ranges whose
// total does not exceed size) and there are at most maxRanges of them
// (maxRanges < 0: no bound). whole reports a request that would have been a
// multipart 206 but asks for more than maxRanges ranges.
func multiRanges(h http.Header, r *http.Request, modtime time.Time, size int64, maxRanges int) (ranges []httpRange, whole bool) {
	status, rh := checkPreconditions(h, r, modtime)
	if status != 0 || rh == "" {
		return nil, false
	}
	ranges, err := parseRange(rh, size)
	if err != nil || len(ranges) < 2 || sumRangesSize(ranges) > size {
		return nil, false
	}
	if maxRanges > 0 && len(ranges) > maxRanges {
		return nil, true
	}
	return ranges, false
}

// serveMultipart sends ranges of f as a multipart/byteranges 206 response
// with exactly the status, headers and body (up to the random boundary)
// that http.ServeContent sends, but without its io.Pipe and goroutine: each
// part header is written with Write and each part body is copied with
// io.CopyN(w, f, length), so it reaches w's ReadFrom, and from there
// sendfile(2), as an *io.LimitedReader around f. Content-Length is computed
// before the first write, so the response is not chunked.
func serveMultipart(w http.ResponseWriter, r *http.Request, name string, modtime time.Time, f *os.File, size int64, encoding string, ranges []httpRange) {
	h := w.Header()
	setLastModified(h, modtime)

	// Content-Type of the parts: as serveContent chooses it.
	var ctype string
	ctypes, haveType := h["Content-Type"]
	if !haveType {
		ctype = mime.TypeByExtension(filepath.Ext(name))
		if ctype == "" {
			var buf [sniffLen]byte
			n, _ := io.ReadFull(f, buf[:])
			ctype = http.DetectContentType(buf[:n])
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				serveError(w, "seeker can't seek", http.StatusInternalServerError)
				return
			}
		}
	} else if len(ctypes) > 0 {
		ctype = ctypes[0]
	}

	boundary := newBoundary()
	buf := make([]byte, 0, 160+len(ctype))
	clen, buf := multipartSize(buf, boundary, ranges, ctype, size)

	h.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	h.Set("Accept-Ranges", "bytes")
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	h.Set("Content-Length", strconv.FormatInt(clen, 10))
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return
	}
	for i, ra := range ranges {
		buf = appendPartHeader(buf[:0], i, boundary, ra, ctype, size)
		if _, err := w.Write(buf); err != nil {
			return
		}
		// On error the body is shorter than Content-Length, so net/http
		// closes the connection and the client sees the truncation.
		if err := copyPart(w, f, ra.start, ra.length); err != nil {
			return
		}
	}
	w.Write(appendClosing(buf[:0], boundary))
}

// serveError is net/http's serveError (with its default GODEBUG): it strips
// the headers meant for a successful response before replying with text.
func serveError(w http.ResponseWriter, text string, code int) {
	h := w.Header()
	for _, k := range []string{"Cache-Control", "Content-Encoding", "Etag", "Last-Modified"} {
		h.Del(k)
	}
	http.Error(w, text, code)
}

// withEncoding returns w, wrapped with httpsnoop so it keeps every optional
// interface of w (io.ReaderFrom above all, so the *io.LimitedReader around
// the *os.File still reaches the connection), adding Content-Encoding to
// the header of a 200 or 206 as it is written. Setting Content-Encoding
// before calling http.ServeContent would make it omit Content-Length from a
// 200 (it allows for writers that compress on the fly), so the body would be
// chunked and never reach sendfile.
func withEncoding(w http.ResponseWriter, encoding string) http.ResponseWriter {
	wrote := false
	commit := func(code int) {
		if !wrote && code >= 200 {
			wrote = true
			if code == http.StatusOK || code == http.StatusPartialContent {
				w.Header().Set("Content-Encoding", encoding)
			}
		}
	}
	return httpsnoop.Wrap(w, httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) { commit(code); next(code) }
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(p []byte) (int, error) { commit(http.StatusOK); return next(p) }
		},
		WriteString: func(next httpsnoop.WriteStringFunc) httpsnoop.WriteStringFunc {
			return func(s string) (int, error) { commit(http.StatusOK); return next(s) }
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) { commit(http.StatusOK); return next(src) }
		},
	})
}
