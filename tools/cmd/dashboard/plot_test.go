package main

import "testing"

func TestLegend(t *testing.T) {
	labels := map[string]string{"http_route": "/files/*", "http_request_method": "GET"}
	tests := []struct{ format, want string }{
		{"{{http_route}}", "/files/*"},
		{"p99 {{ http_route }}", "p99 /files/*"},
		{"{{http_request_method}} {{http_route}}", "GET /files/*"},
		{"{{missing}}", ""},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := legend(tt.format, labels); got != tt.want {
			t.Errorf("legend(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
}
