package handlers

import (
	"net/http"
	"strings"
)

// fallbackName is the file name Attachment uses when name has no usable
// base name.
const fallbackName = "download"

// Attachment returns a Content-Disposition field value that tells the client
// to download the response as a file called name (RFC 6266):
//
//	attachment; filename="r_sum_ 2024.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf
//
// Only the base name is used: everything up to the last slash or backslash
// is dropped, so a client is never offered a directory path. Control
// characters become "_", invalid UTF-8 becomes U+FFFD, and Unicode
// bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F),
// with which a name could disguise its extension, are dropped; a name that
// is then empty, "." or ".." becomes "download". The filename* parameter
// (RFC 8187) carries the exact UTF-8 name, percent-encoded; the filename
// parameter is an ASCII fallback for old clients in which anything but
// printable ASCII, and the characters '"', '\\', '%' and ';', becomes "_".
// The result never contains CR, LF, NUL or any other control character, so
// it is safe to send whatever name is given.
func Attachment(name string) string {
	name = baseName(name)
	var b strings.Builder
	b.Grow(len("attachment; filename=\"\"; filename*=UTF-8''") + 4*len(name))
	b.WriteString(`attachment; filename="`)
	for _, c := range name {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '%' || c == ';' {
			c = '_'
		}
		b.WriteRune(c)
	}
	b.WriteString(`"; filename*=UTF-8''`)
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		if c := name[i]; isAttrChar(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// SetAttachment sets h's Content-Disposition to Attachment(name).
func SetAttachment(h http.Header, name string) {
	h.Set("Content-Disposition", Attachment(name))
}

// baseName returns the sanitized last element of name.
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			// C0 controls, DEL and C1 controls.
			return '_'
		case isBidiControl(r):
			return -1
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		return fallbackName
	}
	return name
}

// isBidiControl reports whether r is a Unicode bidirectional formatting
// character: the embeddings and overrides U+202A to U+202E, the isolates
// U+2066 to U+2069, and the marks U+200E and U+200F. In a file name they
// reorder what is displayed, so "report\u202Efdp.exe" shows as
// "reportexe.pdf"; they are dropped, so the name shows as it is.
func isBidiControl(r rune) bool {
	return (0x202a <= r && r <= 0x202e) || (0x2066 <= r && r <= 0x2069) || r == 0x200e || r == 0x200f
}

// isAttrChar reports whether c is an attr-char of RFC 8187, section 3.2.1,
// which may appear unencoded in an ext-value.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
