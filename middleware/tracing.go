package middleware

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing returns middleware that starts an OpenTelemetry server span for
// each request, continuing the trace the request's headers carry (extracted
// with WithPropagators, or the global propagators).
//
// The span is named "{method} {route}", or "{method}" until the route is
// known ("HTTP" stands in for unknown methods), and renamed once routing has
// found the route. It carries the attributes the HTTP server conventions give
// a span (http.request.method, url.path, url.scheme, server.address and
// server.port from the Host header, client.address, network.peer.address and
// network.peer.port, user_agent.original, network.protocol.version, and at the
// end http.response.status_code, http.route and error.type) plus
// http.request.body.size, http.response.body.size and, with Listener,
// fastpath.response.sendfile.size and fastpath.response.splice.size. Query
// strings are added (url.query) only with WithURLQuery.
//
// The span status is Error for 5xx responses and for responses aborted
// through the server's fault (every error.type but client_aborted; see the
// package documentation), with a description of the cause, and is left unset
// otherwise: 4xx responses are the client's doing, and so is a client that
// goes away. A panic is recorded as an "exception" event, with the stack,
// and re-raised. The span starts and ends at the same instants as the
// request duration Metrics records, so the two agree exactly.
func Tracing(opts ...Option) func(http.Handler) http.Handler {
	cfg := newConfig(opts)
	tp := cfg.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &tracing{
		tracer: tp.Tracer(scopeName,
			trace.WithInstrumentationVersion(scopeVersion),
			trace.WithSchemaURL(semconv.SchemaURL)),
		prop: cfg.propagators,
		cfg:  &cfg,
	}
	if t.prop != nil {
		for _, f := range t.prop.Fields() {
			t.fields = append(t.fields, textproto.CanonicalMIMEHeaderKey(f))
		}
	}
	return func(next http.Handler) http.Handler {
		return newHandler(next, &cfg, t)
	}
}

// serverKind is made once: an option costs an allocation each time.
var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// maxStartAttrs is the most attributes a span starts with.
const maxStartAttrs = 14

// startScratch holds the attributes a span starts with while it starts:
// trace.NewSpanStartConfig copies them, so the array can be reused, and it
// saves a kilobyte of garbage per request.
var startScratch = sync.Pool{New: func() any { return new([maxStartAttrs]attribute.KeyValue) }}

// spanArgs is Tracing's room in the record for its arguments to the span,
// kept there rather than on its stack, from which they would escape to the
// heap anyway: the record is allocated once per request whatever it holds.
type spanArgs struct {
	start   [3]trace.SpanStartOption
	end     [8]attribute.KeyValue // the attributes set as the span ends (at most 8)
	endOpts [1]trace.SpanEndOption
}

type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator // from WithPropagators; nil: the global one
	fields []string                      // the canonical header names prop reads
	cfg    *config
}

// carries reports whether h has a header t.prop reads. Most requests carry
// none, and extracting from them anyway costs a canonicalized lookup, and
// an allocation, per field. A propagator that names no fields is always
// asked.
func (t *tracing) carries(h http.Header) bool {
	if len(t.fields) == 0 {
		return true
	}
	for _, f := range t.fields {
		if _, ok := h[f]; ok {
			return true
		}
	}
	return false
}

// spanMethod returns the method part of a span name.
func spanMethod(method string) string {
	if method == methodOther {
		return "HTTP"
	}
	return method
}

func (t *tracing) start(rec *record, r *http.Request, ctx context.Context) context.Context {
	switch {
	case t.prop == nil:
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	case t.carries(r.Header):
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}

	method := requestMethod(r.Method)
	name := spanMethod(method)
	route := muxRoute(r) // known here when mounted per handler on a ServeMux

	scratch := startScratch.Get().(*[maxStartAttrs]attribute.KeyValue)
	defer func() {
		clear(scratch[:]) // keep no request's strings alive in the pool
		startScratch.Put(scratch)
	}()
	attrs := append(scratch[:0],
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLPath(r.URL.EscapedPath()),
		semconv.URLScheme(urlScheme(r)),
	)
	if method != r.Method {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(r.Method))
	}
	if route != "" {
		name = spanName(method, route)
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	if t.cfg.spanName != nil {
		name = t.cfg.spanName(r, route)
	}
	if t.cfg.query && r.URL.RawQuery != "" {
		attrs = append(attrs, semconv.URLQuery(r.URL.RawQuery))
	}
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	if peer, port := splitHostPort(r.RemoteAddr); peer != "" {
		attrs = append(attrs, semconv.ClientAddress(t.cfg.clientAddress(r)), semconv.NetworkPeerAddress(peer))
		if port > 0 {
			attrs = append(attrs, semconv.NetworkPeerPort(port))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	if v := protocolVersion(r); v != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(v))
	}

	// The options live in the record: a variadic slice passed to an
	// interface method escapes, and would be an allocation per request.
	opts := append(rec.spanArgs.start[:0], serverKind, trace.WithTimestamp(rec.start), trace.WithAttributes(attrs...))
	ctx, span := t.tracer.Start(ctx, name, opts...)
	if !rec.span.IsValid() {
		rec.span = span.SpanContext()
	}
	return ctx
}

func (t *tracing) end(rec *record, r *http.Request) {
	span := trace.SpanFromContext(r.Context())
	end := append(rec.spanArgs.endOpts[:0], trace.WithTimestamp(rec.end))
	if !span.IsRecording() {
		span.End(end...)
		return
	}
	status := rec.status()
	attrs := rec.spanArgs.end[:0]
	if status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
	}
	if rec.route != "" {
		attrs = append(attrs, semconv.HTTPRoute(rec.route))
	}
	switch {
	case t.cfg.spanName != nil:
		span.SetName(t.cfg.spanName(r, rec.route))
	case rec.route != "":
		span.SetName(spanName(requestMethod(r.Method), rec.route))
	}
	// The user's before fastpath's own, so that those win on a shared key;
	// SetAttributes' after WithAttributes', so that they win over those.
	if t.cfg.attrs != nil {
		span.SetAttributes(t.cfg.attrs(r)...)
	}
	if extra := extraOf(rec); len(extra) > 0 {
		span.SetAttributes(extra...)
	}
	attrs = append(attrs, // int64, not semconv's int helpers: bodies pass 2 GiB
		semconv.HTTPRequestBodySizeKey.Int64(rec.reqBody.Load()),
		semconv.HTTPResponseBodySizeKey.Int64(rec.body))
	if n, ok := rec.sendfile(); ok {
		attrs = append(attrs, attribute.Int64(SendfileSizeKey, n))
	}
	if n, ok := rec.splice(); ok {
		attrs = append(attrs, attribute.Int64(SpliceSizeKey, n))
	}
	if rec.hijacked {
		attrs = append(attrs, attribute.Bool(HijackedKey, true))
	}
	if rec.ktls != nil {
		attrs = append(attrs, attribute.Bool(KTLSKey, rec.ktls.Kernel))
		if !rec.ktls.Kernel {
			attrs = append(attrs, attribute.String(KTLSFallbackKey, string(rec.ktls.Reason)))
		}
	}
	if reason, wrapper := rec.copyReason(); reason != "" {
		// Past the scratch array's 8 only for a copied body: that response
		// pays the allocation, not the others.
		attrs = append(attrs, attribute.String(CopyReasonKey, string(reason)))
		if wrapper != "" {
			attrs = append(attrs, attribute.String(CopyWrapperKey, wrapper))
		}
	}
	errType := rec.errorType()
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(string(errType)))
	}
	span.SetAttributes(attrs...)

	switch {
	case errType == ErrorTypePanic:
		msg := fmt.Sprint(rec.panicVal)
		span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
			semconv.ExceptionType(fmt.Sprintf("%T", rec.panicVal)),
			semconv.ExceptionMessage(msg),
			// The panicking frames are still on the stack while the
			// deferred recovery that called end runs.
			semconv.ExceptionStacktrace(string(debug.Stack())),
		), trace.WithTimestamp(rec.end))
		span.SetStatus(codes.Error, msg)
	case status >= 500:
		span.SetStatus(codes.Error, "")
	case serverFault(errType):
		span.SetStatus(codes.Error, errorDescriptions[errType])
	}
	span.End(end...)
}

// spanNames caches "{method} {route}": both have bounded cardinality, and
// building the name per request would be an allocation.
var spanNames cache[nameKey, string]

type nameKey struct{ method, route string }

// spanName returns the span name for a known method (or methodOther) and
// route.
func spanName(method, route string) string {
	return spanNames.get(nameKey{method, route}, func() string { return spanMethod(method) + " " + route })
}

// errorDescriptions are the span status descriptions of the error types
// that are the server's concern.
var errorDescriptions = map[ErrorType]string{
	ErrorTypeSendTimeout:    "send timeout: the client stopped reading",
	ErrorTypeWriteError:     "writing the response failed",
	ErrorTypeShortBody:      "response body shorter than its Content-Length",
	ErrorTypeHandlerAborted: "the handler aborted the response",
}
