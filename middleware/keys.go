package middleware

import (
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Keys fastpath adds to the OpenTelemetry semantic conventions' own, in log
// records and as span attributes.
const (
	// SendfileSizeKey holds the response body bytes sent by sendfile(2);
	// present only with Listener.
	SendfileSizeKey = "fastpath.response.sendfile.size"
	// SpliceSizeKey holds the response body bytes moved to the client by
	// splice(2) (a proxied body, see proxy.ReverseProxy); present only
	// with Listener.
	SpliceSizeKey = "fastpath.response.splice.size"
	// HijackedKey is set to true when the handler hijacked the connection.
	HijackedKey = "fastpath.hijacked"
	// KTLSKey is true when the request came over kernel TLS (ktls.NewListener
	// handed the session's keys to the kernel, so files go by sendfile,
	// encrypted by the kernel) and false when ktls.NewListener left it to
	// crypto/tls; absent for connections ktls did not accept.
	KTLSKey = "fastpath.tls.ktls"
	// KTLSFallbackKey holds why ktls.NewListener left the connection to
	// crypto/tls (a ktls.Reason), when KTLSKey is false.
	KTLSFallbackKey = "fastpath.tls.ktls_fallback"
)

// Logger's keys: the semantic conventions' names where they have one.
const (
	keyMethod         = string(semconv.HTTPRequestMethodKey)
	keyMethodOriginal = string(semconv.HTTPRequestMethodOriginalKey)
	keyPath           = string(semconv.URLPathKey)
	keyQuery          = string(semconv.URLQueryKey)
	keyRoute          = string(semconv.HTTPRouteKey)
	keyStatus         = string(semconv.HTTPResponseStatusCodeKey)
	keyRespBodySize   = string(semconv.HTTPResponseBodySizeKey)
	keyReqBodySize    = string(semconv.HTTPRequestBodySizeKey)
	keyClientAddress  = string(semconv.ClientAddressKey)
	keyUserAgent      = string(semconv.UserAgentOriginalKey)
	keyProtoVersion   = string(semconv.NetworkProtocolVersionKey)
	keyErrorType      = string(semconv.ErrorTypeKey)
	keyExceptionType  = string(semconv.ExceptionTypeKey)
	keyExceptionMsg   = string(semconv.ExceptionMessageKey)
	keyRangeHeader    = "http.request.header.range"
	keyHeaderPrefix   = "http.request.header."

	keyDuration  = "duration_ms"
	keyTTFB      = "ttfb_ms"
	keyRequestID = "request_id"
	keyTraceID   = "trace_id"
	keySpanID    = "span_id"
)
