package httpsyntax

import (
	"strings"
	"testing"
)

func TestIsToken(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{name: "empty", s: "", want: false},
		{name: "range unit", s: "bytes", want: true},
		{name: "method", s: "GET", want: true},
		{name: "header name", s: "X-Forwarded-For", want: true},
		{name: "every tchar symbol", s: "!#$%&'*+-.^_`|~", want: true},
		{name: "digits", s: "0123456789", want: true},
		{name: "space inside", s: "a b", want: false},
		{name: "colon", s: "Host:", want: false},
		{name: "separator", s: "a/b", want: false},
		{name: "quote", s: `"a"`, want: false},
		{name: "tab", s: "a\tb", want: false},
		{name: "NUL", s: "a\x00", want: false},
		{name: "DEL", s: "a\x7f", want: false},
		{name: "non-ASCII", s: "é", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsToken(tt.s); got != tt.want {
				t.Errorf("IsToken(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

// TestIsTokenEveryByte checks each byte alone against the tchar set as RFC
// 9110, section 5.6.2 lists it.
func TestIsTokenEveryByte(t *testing.T) {
	const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		if got, want := IsToken(s), strings.IndexByte(tchars, byte(c)) >= 0; got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}
