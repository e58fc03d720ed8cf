package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name   string
		header string // WithTrustedProxy header; "" for none
		remote string
		values http.Header
		want   string
	}{
		{name: "peer by default", remote: "198.51.100.7:5555",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9"}}, want: "198.51.100.7"},
		{name: "IPv6 peer", remote: "[2001:db8::1]:5555", want: "2001:db8::1"},
		{name: "rewritten without port", remote: "203.0.113.9", want: "203.0.113.9"},
		{name: "trusted proxy, X-Forwarded-For", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9"}}, want: "203.0.113.9"},
		{name: "untrusted peer ignores header", header: "X-Forwarded-For", remote: "198.51.100.7:80",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9"}}, want: "198.51.100.7"},
		{name: "spoofed leftmost entry is skipped", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"1.2.3.4, 203.0.113.9, 10.9.9.9"}}, want: "203.0.113.9"},
		{name: "several header lines", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"1.2.3.4", "203.0.113.9"}}, want: "203.0.113.9"},
		{name: "all hops trusted", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"10.0.0.5, 10.0.0.6"}}, want: "10.0.0.5"},
		{name: "garbage stops the walk", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9, evil\r\nlog: injected"}}, want: "10.1.2.3"},
		{name: "X-Real-IP", header: "X-Real-IP", remote: "10.1.2.3:80",
			values: http.Header{"X-Real-Ip": {"203.0.113.9"}}, want: "203.0.113.9"},
		{name: "Forwarded", header: "Forwarded", remote: "[fd00::1]:80",
			values: http.Header{"Forwarded": {`for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`}}, want: "2001:db8:cafe::17"},
		{name: "Forwarded, obfuscated identifier", header: "Forwarded", remote: "10.1.2.3:80",
			values: http.Header{"Forwarded": {`for=_hidden`}}, want: "10.1.2.3"},
		{name: "IPv4-mapped peer", header: "X-Forwarded-For", remote: "[::ffff:10.1.2.3]:80",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9"}}, want: "203.0.113.9"},
		{name: "bracketed IPv6 hop without port", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"[2001:db8::9]"}}, want: "2001:db8::9"},
		{name: "unmatched bracket stops the walk", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9, [2001:db8::9"}}, want: "10.1.2.3"},
		{name: "zoned hop stops the walk", header: "X-Forwarded-For", remote: "10.1.2.3:80",
			values: http.Header{"X-Forwarded-For": {"203.0.113.9, fe80::1%eth0"}}, want: "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.header != "" {
				opts = append(opts, WithTrustedProxy(tt.header, proxies...))
			}
			cfg := newConfig(opts)
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			r.Header = tt.values
			if got := cfg.clientAddress(r); got != tt.want {
				t.Errorf("client address %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithTrustedProxyPanics(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		proxies []netip.Prefix
		want    string
	}{
		{name: "unknown header", header: "X-Client", proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			want: `fastpath/middleware: WithTrustedProxy: header "X-Client" is not X-Forwarded-For, X-Real-IP or Forwarded`},
		{name: "no proxies", header: "X-Forwarded-For",
			want: "fastpath/middleware: WithTrustedProxy: no trusted proxy prefixes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("panic %v, want %q", got, tt.want)
				}
			}()
			WithTrustedProxy(tt.header, tt.proxies...)
		})
	}
}

// TestSplitHostPort checks the one address parser: server.address and
// server.port from Host, the peer address, and proxy header hops.
func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
	}{
		{"example.com", "example.com", 0},
		{"example.com:8080", "example.com", 8080},
		{"127.0.0.1:1234", "127.0.0.1", 1234},
		{"[::1]:443", "::1", 443},
		{"[::1]", "::1", 0},
		{"example.com:notaport", "example.com", 0},
		{"example.com:70000", "example.com", 0},
		{"", "", 0},
		{"a:b:c", "a:b:c", 0},
	}
	for _, tt := range tests {
		if host, port := splitHostPort(tt.in); host != tt.host || port != tt.port {
			t.Errorf("splitHostPort(%q) = %q, %d; want %q, %d", tt.in, host, port, tt.host, tt.port)
		}
	}
}
