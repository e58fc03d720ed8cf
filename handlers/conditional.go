package handlers

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// This file evaluates the conditional request header fields of RFC 9110,
// section 13, against one representation: its entity tag and its
// modification time. Each function names the section whose rule it
// implements; the package documentation lists where the result differs from
// http.ServeContent's, and why.

// entityTag is an entity-tag (RFC 9110, section 8.8.3): an opaque quoted
// string, optionally marked weak with "W/".
type entityTag struct {
	opaque string // with its double quotes
	weak   bool
}

// parseEntityTag reads the entity-tag at the start of s and returns it and
// what follows it. ok is false when s does not start with one. The grammar is
// section 8.8.3's:
//
//	entity-tag = [ weak ] opaque-tag
//	weak       = %s"W/"
//	opaque-tag = DQUOTE *etagc DQUOTE
//	etagc      = %x21 / %x23-7E / obs-text
func parseEntityTag(s string) (t entityTag, rest string, ok bool) {
	if strings.HasPrefix(s, "W/") {
		t.weak = true
		s = s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return entityTag{}, "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			t.opaque = s[:i+1]
			return t, s[i+1:], true
		case c == 0x21, 0x23 <= c && c <= 0x7e, c >= 0x80:
		default:
			return entityTag{}, "", false
		}
	}
	return entityTag{}, "", false
}

// strongMatch is section 8.8.3.2's strong comparison: neither tag is weak
// and their opaque-tags are identical.
func (t entityTag) strongMatch(u entityTag) bool {
	return !t.weak && !u.weak && t.opaque == u.opaque
}

// weakMatch is section 8.8.3.2's weak comparison: the opaque-tags are
// identical, whether or not either tag is weak.
func (t entityTag) weakMatch(u entityTag) bool {
	return t.opaque == u.opaque
}

// validators are what the conditional fields are compared with: the
// selected representation's entity tag (the response's ETag field, if it
// holds a valid one) and its modification time.
type validators struct {
	etag    entityTag
	hasETag bool
	modtime time.Time // zero when there is none (see hasDate)
}

func newValidators(h http.Header, modtime time.Time) validators {
	v := validators{modtime: modtime}
	if s := h.Get("Etag"); s != "" {
		if t, rest, ok := parseEntityTag(trimOWS(s)); ok && rest == "" {
			v.etag, v.hasETag = t, true
		}
	}
	return v
}

var unixEpoch = time.Unix(0, 0)

// hasDate reports whether the representation has a modification date. Like
// http.ServeContent, the zero time and the Unix epoch mean "none": no
// Last-Modified is sent, and the date conditions are then ignored (RFC 9110,
// sections 13.1.3 and 13.1.4).
func (v validators) hasDate() bool {
	return !v.modtime.IsZero() && !v.modtime.Equal(unixEpoch)
}

// setLastModified sets Last-Modified (RFC 9110, section 8.8.2) when the
// representation has a date. HTTP-date has whole seconds.
func setLastModified(h http.Header, modtime time.Time) {
	if (validators{modtime: modtime}).hasDate() {
		h.Set("Last-Modified", modtime.UTC().Format(http.TimeFormat))
	}
}

// isOWS reports whether c is optional whitespace (RFC 9110, section 5.6.3).
func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(s string) string {
	for s != "" && isOWS(s[0]) {
		s = s[1:]
	}
	for s != "" && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// listField returns the value of a list-based field, its field lines
// combined with commas as RFC 9110, section 5.3 allows. A field line whose
// value is empty has no members, so present is false when every line is
// empty.
func listField(h http.Header, name string) (value string, present bool) {
	lines := h[textproto.CanonicalMIMEHeaderKey(name)]
	var b strings.Builder
	for _, l := range lines {
		if l = trimOWS(l); l == "" {
			continue
		}
		if present {
			b.WriteString(", ")
		}
		b.WriteString(l)
		present = true
	}
	if len(lines) == 1 {
		return trimOWS(lines[0]), present // the usual case: no copy
	}
	return b.String(), present
}

// singletonField returns the value of a field that takes one value, and the
// number of non-empty field lines it has. A count above one makes the value
// invalid (RFC 9110, section 5.3).
func singletonField(h http.Header, name string) (value string, lines int) {
	for _, l := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		if l = trimOWS(l); l != "" {
			if lines == 0 {
				value = l
			}
			lines++
		}
	}
	return value, lines
}

// dateField returns the HTTP-date (RFC 9110, section 5.6.7) that the field
// name holds. ok is false when the field is absent, has more than one member
// or is not a valid date: sections 13.1.3 and 13.1.4 say to ignore the field
// then. http.ParseTime accepts the three formats section 5.6.7 requires a
// recipient to accept.
func dateField(h http.Header, name string) (t time.Time, ok bool) {
	v, n := singletonField(h, name)
	if n != 1 {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

// tagListMatch evaluates the value of If-Match or If-None-Match ("*" /
// #entity-tag). star reports the value "*"; match reports whether a listed
// tag matches cur by the given comparison; valid is false when the value is
// neither "*" nor a list of entity tags. Empty list elements are skipped
// (RFC 9110, section 5.6.1). The whole value is checked, so a tag before a
// syntax error counts for nothing.
func tagListMatch(value string, cur entityTag, hasCur bool, strong bool) (star, match, valid bool) {
	if value == "*" {
		return true, false, true
	}
	s := value
	for {
		for s != "" && (isOWS(s[0]) || s[0] == ',') {
			s = s[1:]
		}
		if s == "" {
			return false, match, true
		}
		t, rest, ok := parseEntityTag(s)
		if !ok {
			return false, false, false
		}
		if hasCur && !match {
			if strong {
				match = t.strongMatch(cur)
			} else {
				match = t.weakMatch(cur)
			}
		}
		for rest != "" && isOWS(rest[0]) {
			rest = rest[1:]
		}
		if rest != "" && rest[0] != ',' {
			return false, false, false
		}
		s = rest
	}
}

// ifMatch evaluates If-Match (RFC 9110, section 13.1.1): true for "*" (the
// representation exists) or when a listed tag matches by strong comparison;
// false otherwise, including for a value that is not a valid list.
func (v validators) ifMatch(value string) bool {
	star, match, valid := tagListMatch(value, v.etag, v.hasETag, true)
	return valid && (star || match)
}

// ifNoneMatch evaluates If-None-Match (RFC 9110, section 13.1.2): false for
// "*" (the representation exists) or when a listed tag matches by weak
// comparison; true otherwise, including for a value that is not a valid
// list.
func (v validators) ifNoneMatch(value string) bool {
	star, match, valid := tagListMatch(value, v.etag, v.hasETag, false)
	return !valid || !(star || match)
}

// notModifiedSince reports whether the representation was last modified no
// later than t, at the one-second resolution of the Last-Modified field it
// was sent with.
func (v validators) notModifiedSince(t time.Time) bool {
	return v.modtime.Unix() <= t.Unix()
}

// isSafeRead reports whether method is GET or HEAD: the methods for which a
// failed If-None-Match or If-Modified-Since means 304 (RFC 9110, sections
// 13.1.2 and 13.1.3) and for which this package handles ranges.
func isSafeRead(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// evalPreconditions evaluates the preconditions of r in the order of RFC
// 9110, section 13.2.2, steps 1 to 4, and returns the status to answer
// with: 0 to go on with the method, 412 (Precondition Failed) or 304 (Not
// Modified). Step 5, If-Range, belongs to range handling: see ifRange.
func (v validators) evalPreconditions(r *http.Request) int {
	h := r.Header
	// Step 1: If-Match; step 2: If-Unmodified-Since, only without If-Match
	// (section 13.1.4), and only when there is a date to compare.
	if value, ok := listField(h, "If-Match"); ok {
		if !v.ifMatch(value) {
			return http.StatusPreconditionFailed
		}
	} else if t, ok := dateField(h, "If-Unmodified-Since"); ok && v.hasDate() {
		if !v.notModifiedSince(t) {
			return http.StatusPreconditionFailed
		}
	}
	// Step 3: If-None-Match; step 4: If-Modified-Since, only without
	// If-None-Match and only for GET and HEAD (section 13.1.3).
	if value, ok := listField(h, "If-None-Match"); ok {
		if !v.ifNoneMatch(value) {
			if isSafeRead(r.Method) {
				return http.StatusNotModified
			}
			return http.StatusPreconditionFailed
		}
	} else if isSafeRead(r.Method) {
		if t, ok := dateField(h, "If-Modified-Since"); ok && v.hasDate() && v.notModifiedSince(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// ifRange evaluates If-Range (RFC 9110, section 13.1.5) for a request that
// has a Range field: true to honour the Range, false to send the whole
// representation. Without If-Range the Range is honoured. An entity tag
// must equal the current one by strong comparison, so a weak tag never
// matches; a date must name the second of the representation's
// modification time, the value Last-Modified carries. Anything else,
// including an entity tag followed by more text, is false.
func (v validators) ifRange(h http.Header) bool {
	value, n := singletonField(h, "If-Range")
	switch {
	case n == 0:
		return true
	case n > 1:
		return false
	}
	if strings.HasPrefix(value, `"`) || strings.HasPrefix(value, `W/"`) {
		t, rest, ok := parseEntityTag(value)
		return ok && rest == "" && v.hasETag && t.strongMatch(v.etag)
	}
	t, err := http.ParseTime(value)
	return err == nil && v.hasDate() && t.Unix() == v.modtime.Unix()
}
