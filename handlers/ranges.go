package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// httpRange specifies the byte range to be sent to the client.
// It is net/http's httpRange.
type httpRange struct {
	start, length int64
}

var (
	errInvalidRange = errors.New("invalid range")
	// errNoOverlap is returned by parseRange if first-byte-pos of all of the
	// byte-range-spec values is greater than the content size.
	errNoOverlap = errors.New("invalid range: failed to overlap")
)

// parseRange parses a Range header string as per RFC 9110, section 14.
// errNoOverlap is returned if none of the ranges overlap.
//
// It is a faithful port of parseRange in $GOROOT/src/net/http/fs.go
// (Go 1.26), so that this package answers exactly the requests with 206
// that http.ServeContent answers with 206.
func parseRange(s string, size int64) ([]httpRange, error) {
	if s == "" {
		return nil, nil // header not present
	}
	const b = "bytes="
	if !strings.HasPrefix(s, b) {
		return nil, errInvalidRange
	}
	var ranges []httpRange
	noOverlap := false
	for ra := range strings.SplitSeq(s[len(b):], ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			continue
		}
		start, end, ok := strings.Cut(ra, "-")
		if !ok {
			return nil, errInvalidRange
		}
		start, end = textproto.TrimString(start), textproto.TrimString(end)
		var r httpRange
		if start == "" {
			// If no start is specified, end specifies the
			// range start relative to the end of the file,
			// and we are dealing with <suffix-length>
			// which has to be a non-negative integer as per
			// RFC 9110, section 14.1.1.
			if end == "" || end[0] == '-' {
				return nil, errInvalidRange
			}
			i, err := strconv.ParseInt(end, 10, 64)
			if i < 0 || err != nil {
				return nil, errInvalidRange
			}
			if i > size {
				i = size
			}
			r.start = size - i
			r.length = size - r.start
		} else {
			i, err := strconv.ParseInt(start, 10, 64)
			if err != nil || i < 0 {
				return nil, errInvalidRange
			}
			if i >= size {
				// If the range begins after the size of the content,
				// then it does not overlap.
				noOverlap = true
				continue
			}
			r.start = i
			if end == "" {
				// If no end is specified, range extends to end of the file.
				r.length = size - r.start
			} else {
				i, err := strconv.ParseInt(end, 10, 64)
				if err != nil || r.start > i {
					return nil, errInvalidRange
				}
				if i >= size {
					i = size - 1
				}
				r.length = i - r.start + 1
			}
		}
		ranges = append(ranges, r)
	}
	if noOverlap && len(ranges) == 0 {
		// The specified ranges did not overlap with the content.
		return nil, errNoOverlap
	}
	return ranges, nil
}

func sumRangesSize(ranges []httpRange) (size int64) {
	for _, ra := range ranges {
		size += ra.length
	}
	return size
}

// boundaryLen is the length of the boundaries mime/multipart generates (30
// random bytes, hex encoded), and so the length net/http's rangesMIMESize
// assumes.
const boundaryLen = 60

// newBoundary returns a random multipart boundary of the same form as
// mime/multipart's.
func newBoundary() string {
	var raw [boundaryLen / 2]byte
	rand.Read(raw[:]) // never fails; see crypto/rand.Read
	return hex.EncodeToString(raw[:])
}

// appendPartHeader appends the bytes mime/multipart.Writer.CreatePart writes
// for part i of a multipart/byteranges body: the (closing of the previous
// part and the) boundary line, the part's Content-Range and Content-Type
// header fields, sorted as CreatePart sorts them, and the blank line.
func appendPartHeader(b []byte, i int, boundary string, ra httpRange, ctype string, size int64) []byte {
	if i > 0 {
		b = append(b, "\r\n"...)
	}
	b = append(b, "--"...)
	b = append(b, boundary...)
	b = append(b, "\r\nContent-Range: bytes "...)
	b = strconv.AppendInt(b, ra.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, ra.start+ra.length-1, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	b = append(b, "\r\nContent-Type: "...)
	b = appendHeaderValue(b, ctype)
	b = append(b, "\r\n\r\n"...)
	return b
}

// appendHeaderValue appends v with CR and LF replaced by spaces, as
// net/http does for response header values, so a caller-supplied
// Content-Type cannot inject lines into the multipart body.
func appendHeaderValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// appendClosing appends the closing delimiter mime/multipart.Writer.Close
// writes.
func appendClosing(b []byte, boundary string) []byte {
	b = append(b, "\r\n--"...)
	b = append(b, boundary...)
	b = append(b, "--\r\n"...)
	return b
}

// multipartSize returns the exact length of the multipart/byteranges body
// for ranges, as net/http's rangesMIMESize computes it. buf is scratch space;
// the (possibly grown) buffer is returned for reuse.
func multipartSize(buf []byte, boundary string, ranges []httpRange, ctype string, size int64) (int64, []byte) {
	var n int64
	for i, ra := range ranges {
		buf = appendPartHeader(buf[:0], i, boundary, ra, ctype, size)
		n += int64(len(buf)) + ra.length
	}
	buf = appendClosing(buf[:0], boundary)
	n += int64(len(buf))
	return n, buf
}

// copyPart sends length bytes of f starting at start to w. io.CopyN hands w
// an *io.LimitedReader around f, which http.ResponseWriter's ReadFrom passes
// on to the connection, and *net.TCPConn.ReadFrom sends with sendfile(2).
func copyPart(w io.Writer, f io.ReadSeeker, start, length int64) error {
	if length == 0 {
		return nil
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	_, err := io.CopyN(w, f, length)
	return err
}
