package handlers

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// This file is a faithful port of the precondition evaluation in
// $GOROOT/src/net/http/fs.go (Go 1.26): scanETag, etagStrongMatch,
// etagWeakMatch, checkIfMatch, checkIfUnmodifiedSince, checkIfNoneMatch,
// checkIfModifiedSince, checkIfRange, isZeroTime and checkPreconditions.
//
// The only change is that nothing here writes a response: the functions read
// the response's ETag from a header map and checkPreconditions reports the
// status net/http would send (304 or 412) instead of sending it. The package
// uses this only to decide whether a request is a multi-range request that
// http.ServeContent would answer with 206; every other outcome, including
// these 304 and 412 responses, is left to http.ServeContent itself, which
// evaluates the same preconditions again and writes them.

// condResult is the result of an HTTP request precondition check.
// See RFC 9110, section 13.1.
type condResult int

const (
	condNone condResult = iota
	condTrue
	condFalse
)

// scanETag determines if a syntactically valid ETag is present at s. If so,
// the ETag and remaining text after consuming ETag is returned. Otherwise,
// it returns "", "".
func scanETag(s string) (etag string, remain string) {
	s = textproto.TrimString(s)
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s[start:]) < 2 || s[start] != '"' {
		return "", ""
	}
	// ETag is either W/"text" or "text". See RFC 9110, section 8.8.3.
	for i := start + 1; i < len(s); i++ {
		c := s[i]
		switch {
		// Character values allowed in ETags.
		case c == 0x21 || c >= 0x23 && c <= 0x7E || c >= 0x80:
		case c == '"':
			return s[:i+1], s[i+1:]
		default:
			return "", ""
		}
	}
	return "", ""
}

// etagStrongMatch reports whether a and b match using strong ETag comparison.
// Assumes a and b are valid ETags.
func etagStrongMatch(a, b string) bool {
	return a == b && a != "" && a[0] == '"'
}

// etagWeakMatch reports whether a and b match using weak ETag comparison.
// Assumes a and b are valid ETags.
func etagWeakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

func checkIfMatch(h http.Header, r *http.Request) condResult {
	im := r.Header.Get("If-Match")
	if im == "" {
		return condNone
	}
	for {
		im = textproto.TrimString(im)
		if len(im) == 0 {
			break
		}
		if im[0] == ',' {
			im = im[1:]
			continue
		}
		if im[0] == '*' {
			return condTrue
		}
		etag, remain := scanETag(im)
		if etag == "" {
			break
		}
		if etagStrongMatch(etag, h.Get("Etag")) {
			return condTrue
		}
		im = remain
	}
	return condFalse
}

func checkIfUnmodifiedSince(r *http.Request, modtime time.Time) condResult {
	ius := r.Header.Get("If-Unmodified-Since")
	if ius == "" || isZeroTime(modtime) {
		return condNone
	}
	t, err := http.ParseTime(ius)
	if err != nil {
		return condNone
	}
	// The Last-Modified header truncates sub-second precision so
	// the modtime needs to be truncated too.
	modtime = modtime.Truncate(time.Second)
	if ret := modtime.Compare(t); ret <= 0 {
		return condTrue
	}
	return condFalse
}

func checkIfNoneMatch(h http.Header, r *http.Request) condResult {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return condNone
	}
	buf := inm
	for {
		buf = textproto.TrimString(buf)
		if len(buf) == 0 {
			break
		}
		if buf[0] == ',' {
			buf = buf[1:]
			continue
		}
		if buf[0] == '*' {
			return condFalse
		}
		etag, remain := scanETag(buf)
		if etag == "" {
			break
		}
		if etagWeakMatch(etag, h.Get("Etag")) {
			return condFalse
		}
		buf = remain
	}
	return condTrue
}

func checkIfModifiedSince(r *http.Request, modtime time.Time) condResult {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return condNone
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" || isZeroTime(modtime) {
		return condNone
	}
	t, err := http.ParseTime(ims)
	if err != nil {
		return condNone
	}
	// The Last-Modified header truncates sub-second precision so
	// the modtime needs to be truncated too.
	modtime = modtime.Truncate(time.Second)
	if ret := modtime.Compare(t); ret <= 0 {
		return condFalse
	}
	return condTrue
}

func checkIfRange(h http.Header, r *http.Request, modtime time.Time) condResult {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return condNone
	}
	ir := r.Header.Get("If-Range")
	if ir == "" {
		return condNone
	}
	etag, _ := scanETag(ir)
	if etag != "" {
		if etagStrongMatch(etag, h.Get("Etag")) {
			return condTrue
		}
		return condFalse
	}
	// The If-Range value is typically the ETag value, but it may also be
	// the modtime date. See golang.org/issue/8367.
	if modtime.IsZero() {
		return condFalse
	}
	t, err := http.ParseTime(ir)
	if err != nil {
		return condFalse
	}
	if t.Unix() == modtime.Unix() {
		return condTrue
	}
	return condFalse
}

var unixEpochTime = time.Unix(0, 0)

// isZeroTime reports whether t is obviously unspecified (either zero or Unix()=0).
func isZeroTime(t time.Time) bool {
	return t.IsZero() || t.Equal(unixEpochTime)
}

// setLastModified is net/http's setLastModified on a header map.
func setLastModified(h http.Header, modtime time.Time) {
	if !isZeroTime(modtime) {
		h.Set("Last-Modified", modtime.UTC().Format(http.TimeFormat))
	}
}

// checkPreconditions evaluates the request preconditions as net/http's
// checkPreconditions does (RFC 9110, section 13.2.2), against the response
// header h (for its ETag) and modtime. status is 0 when the request should
// proceed, or the status net/http would answer with: 304 Not Modified or
// 412 Precondition Failed. rangeHeader is the Range header to honour: empty
// when there is none or when If-Range does not match.
func checkPreconditions(h http.Header, r *http.Request, modtime time.Time) (status int, rangeHeader string) {
	ch := checkIfMatch(h, r)
	if ch == condNone {
		ch = checkIfUnmodifiedSince(r, modtime)
	}
	if ch == condFalse {
		return http.StatusPreconditionFailed, ""
	}
	switch checkIfNoneMatch(h, r) {
	case condFalse:
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return http.StatusNotModified, ""
		}
		return http.StatusPreconditionFailed, ""
	case condNone:
		if checkIfModifiedSince(r, modtime) == condFalse {
			return http.StatusNotModified, ""
		}
	}

	rangeHeader = r.Header.Get("Range")
	if rangeHeader != "" && checkIfRange(h, r, modtime) == condFalse {
		rangeHeader = ""
	}
	return 0, rangeHeader
}
