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
)

// The values of error.type, in logs, metrics and spans, for a response that
// did not complete (see "Status, aborts, hijacks and panics" in the package
// documentation). A 5xx response that completed has its status code as its
// error.type instead.
const (
	// ErrorTypeClientAborted means the client went away, or reset the connection,
	// before it had the whole response (a browser cancelling a download to
	// seek, say). Normal traffic: logged at Info by default, and the span
	// status is left unset.
	ErrorTypeClientAborted = "client_aborted"
	// ErrorTypeSendTimeout means a write missed its deadline, such as the one
	// handlers.WithSendTimeout keeps ahead of a download that progresses, or
	// http.Server.WriteTimeout. The server cut off a client that stopped
	// reading. Logged at Warn by default.
	ErrorTypeSendTimeout = "send_timeout"
	// ErrorTypeWriteError means a write failed for another reason (the server
	// closed the connection at shutdown, say).
	ErrorTypeWriteError = "write_error"
	// ErrorTypeShortBody means the handler returned without writing the whole
	// body its Content-Length declared (a file truncated while it was sent,
	// an upstream that died mid-body), so the client saw the response cut.
	ErrorTypeShortBody = "short_body"
	// ErrorTypeHandlerAborted means the handler aborted the response on purpose
	// with panic(http.ErrAbortHandler), as httputil.ReverseProxy does when
	// its upstream fails mid-body, or with runtime.Goexit.
	ErrorTypeHandlerAborted = "handler_aborted"
	// ErrorTypePanic means the handler panicked.
	ErrorTypePanic = "panic"
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

	keyDuration  = "duration"
	keyTTFB      = "ttfb"
	keyRequestID = "request_id"
	keyTraceID   = "trace_id"
	keySpanID    = "span_id"
)
