package middleware

import "testing"

// TestCopyReasonValues pins the values recorded on spans: dashboards and
// queries match them, so renaming a constant must not change its value.
func TestCopyReasonValues(t *testing.T) {
	tests := []struct {
		name string
		got  CopyReason
		want string
	}{
		{name: "ClientTLS", got: CopyReasonClientTLS, want: "client_tls"},
		{name: "ClientHTTP2", got: CopyReasonClientHTTP2, want: "client_http2"},
		{name: "NoReadFrom", got: CopyReasonNoReadFrom, want: "no_readfrom"},
		{name: "Encoded", got: CopyReasonEncoded, want: "encoded"},
		{name: "LengthChanged", got: CopyReasonLengthChanged, want: "length_changed"},
		{name: "Transport", got: CopyReasonTransport, want: "transport"},
		{name: "UpstreamTLS", got: CopyReasonUpstreamTLS, want: "upstream_tls"},
		{name: "Upgrade", got: CopyReasonUpgrade, want: "upgrade"},
		{name: "ForwardProxy", got: CopyReasonForwardProxy, want: "forward_proxy"},
		{name: "Chunked", got: CopyReasonChunked, want: "chunked"},
		{name: "UnknownLength", got: CopyReasonUnknownLength, want: "unknown_length"},
		{name: "UpstreamConn", got: CopyReasonUpstreamConn, want: "upstream_conn"},
		{name: "BodyReplaced", got: CopyReasonBodyReplaced, want: "body_replaced"},
		{name: "FlushInterval", got: CopyReasonFlushInterval, want: "flush_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("CopyReason%s = %q, want %q", tt.name, tt.got, tt.want)
			}
		})
	}
}
