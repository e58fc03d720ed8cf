package middleware

import "net/http"

// methodOther replaces request methods the HTTP semantic conventions do not
// know, which keeps attribute cardinality bounded whatever clients send.
const methodOther = "_OTHER"

// knownMethods are the methods the OpenTelemetry HTTP semantic conventions
// list (RFC 9110, RFC 5789 and QUERY).
var knownMethods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodDelete, http.MethodConnect, http.MethodOptions,
	http.MethodTrace, http.MethodPatch, "QUERY",
}

// methodIndex returns m's index in knownMethods, or len(knownMethods) for
// any other method; the match is case-sensitive, as the conventions require.
func methodIndex(m string) int {
	for i, k := range knownMethods {
		if m == k {
			return i
		}
	}
	return len(knownMethods)
}

// knownMethod reports whether m is one of knownMethods.
func knownMethod(m string) bool { return methodIndex(m) < len(knownMethods) }

// requestMethod returns the http.request.method value for m: m itself when
// known, else "_OTHER".
func requestMethod(m string) string {
	if knownMethod(m) {
		return m
	}
	return methodOther
}

// protocolVersion returns the network.protocol.version of r: "1.0", "1.1",
// "2" or "3".
func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	case r.ProtoMajor == 3:
		return "3"
	}
	return ""
}

// urlScheme returns the url.scheme of r as the server received it.
func urlScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
