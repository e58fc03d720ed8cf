package middleware

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Logger returns middleware that writes one record to l for each request when
// it completes. A nil l means slog.Default(), looked up per request.
//
// The level is Info below 400, Warn for 4xx, and Error for 5xx and for
// responses that did not complete through the server's fault; a client that
// left early is logged at Info and a send timeout at Warn (see WithLevel and
// the ErrorType constants). The message is "http request" and the
// keys follow the OpenTelemetry semantic conventions so that logs line up
// with metrics and spans:
//
//	http.request.method          GET, or _OTHER for unknown methods
//	http.request.method_original the method as sent, when it is _OTHER
//	url.path                     the escaped request path
//	url.query                    only with WithURLQuery
//	http.route                   the route pattern, when one matched
//	http.response.status_code    absent when none was observed (hijacked)
//	http.response.body.size      body bytes written, however they were written
//	http.request.body.size       request body bytes read, when any
//	duration_ms                  milliseconds until the handler returned
//	ttfb_ms                      milliseconds until the status was committed
//	client.address               the peer address (see RemoteAddr)
//	user_agent.original          the User-Agent header, when present
//	network.protocol.version     1.0, 1.1 or 2
//	http.request.header.range    the Range header, when present
//	http.request.header.<name>   headers named by WithRequestHeaders
//	request_id                   chi's request id, when present
//	trace_id, span_id            the current span, when valid
//	error.type                   the ErrorType, when not empty
//	exception.type               the panic value's type, after a panic
//	exception.message            the panic value, after a panic
//	fastpath.hijacked            true when the connection was hijacked
//	fastpath.tls.ktls            whether kernel TLS carried it, for connections
//	                             ktls.NewListener accepted
//	fastpath.tls.ktls_fallback   why not (a ktls.Reason), when it did not
//	fastpath.response.sendfile.size bytes sent by sendfile, with Listener (0 over crypto/tls)
//	fastpath.response.splice.size   bytes moved by splice, the same
//	fastpath.response.copy_reason   why a body that could have gone zero-copy was
//	                                copied (a CopyReason), when fastpath can tell
//	fastpath.response.copy_wrapper  the ResponseWriter wrapper to blame, if any
//
// Logging never reads or copies the body.
func Logger(l *slog.Logger, opts ...Option) func(http.Handler) http.Handler {
	cfg := newConfig(opts)
	return func(next http.Handler) http.Handler {
		return newHandler(next, &cfg, &logger{l: l, cfg: &cfg})
	}
}

// logMessage is the message of every request record.
const logMessage = "http request"

type logger struct {
	l   *slog.Logger
	cfg *config
}

func (o *logger) start(_ *record, _ *http.Request, ctx context.Context) context.Context {
	return ctx
}

func (o *logger) end(rec *record, r *http.Request) {
	l := o.l
	if l == nil {
		l = slog.Default()
	}
	status, errType := rec.status(), rec.errorType()
	level := o.cfg.level(status, errType)
	ctx := r.Context()
	if !l.Enabled(ctx, level) {
		return
	}

	var buf [32]slog.Attr
	attrs := buf[:0]
	method := requestMethod(r.Method)
	attrs = append(attrs, slog.String(keyMethod, method))
	if method != r.Method {
		attrs = append(attrs, slog.String(keyMethodOriginal, r.Method))
	}
	attrs = append(attrs, slog.String(keyPath, r.URL.EscapedPath()))
	if o.cfg.query && r.URL.RawQuery != "" {
		attrs = append(attrs, slog.String(keyQuery, r.URL.RawQuery))
	}
	if rec.route != "" {
		attrs = append(attrs, slog.String(keyRoute, rec.route))
	}
	if status != 0 {
		attrs = append(attrs, slog.Int(keyStatus, status))
	}
	attrs = append(attrs, slog.Int64(keyRespBodySize, rec.body))
	if n := rec.reqBody.Load(); n > 0 {
		attrs = append(attrs, slog.Int64(keyReqBodySize, n))
	}
	attrs = append(attrs, slog.Float64(keyDuration, millis(rec.duration())))
	if d := rec.ttfb(); d > 0 {
		attrs = append(attrs, slog.Float64(keyTTFB, millis(d)))
	}
	attrs = append(attrs, slog.String(keyClientAddress, o.cfg.clientAddress(r)))
	if ua := userAgent(r); ua != "" {
		attrs = append(attrs, slog.String(keyUserAgent, ua))
	}
	if v := protocolVersion(r); v != "" {
		attrs = append(attrs, slog.String(keyProtoVersion, v))
	}
	if rg := r.Header["Range"]; len(rg) > 0 {
		attrs = append(attrs, slog.String(keyRangeHeader, strings.Join(rg, ", ")))
	}
	for _, h := range o.cfg.headers {
		if vs := r.Header[h.name]; len(vs) > 0 {
			v := "[REDACTED]"
			if !h.redact {
				v = strings.Join(vs, ", ")
			}
			attrs = append(attrs, slog.String(h.key, v))
		}
	}
	if id := chimw.GetReqID(ctx); id != "" {
		attrs = append(attrs, slog.String(keyRequestID, id))
	}
	// The span in the context, or the one Tracing started inside this
	// Logger (as spanContext does, with one context lookup instead of two).
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() && rec.span.IsValid() {
		sc = rec.span
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	if sc.IsValid() {
		traceID, spanID := hexIDs(sc)
		attrs = append(attrs, slog.String(keyTraceID, traceID), slog.String(keySpanID, spanID))
	}
	if errType != "" {
		attrs = append(attrs, slog.String(keyErrorType, string(errType)))
	}
	if errType == ErrorTypePanic {
		attrs = append(attrs,
			slog.String(keyExceptionType, fmt.Sprintf("%T", rec.panicVal)),
			slog.String(keyExceptionMsg, fmt.Sprint(rec.panicVal)))
	}
	if rec.hijacked {
		attrs = append(attrs, slog.Bool(HijackedKey, true))
	}
	if rec.viaKTLS {
		attrs = append(attrs, slog.Bool(KTLSKey, rec.ktls.Kernel))
		if !rec.ktls.Kernel {
			attrs = append(attrs, slog.String(KTLSFallbackKey, string(rec.ktls.Reason)))
		}
	}
	if n, ok := rec.sendfile(); ok {
		attrs = append(attrs, slog.Int64(SendfileSizeKey, n))
	}
	if n, ok := rec.splice(); ok {
		attrs = append(attrs, slog.Int64(SpliceSizeKey, n))
	}
	if reason, wrapper := rec.copyReason(); reason != "" {
		attrs = append(attrs, slog.String(CopyReasonKey, string(reason)))
		if wrapper != "" {
			attrs = append(attrs, slog.String(CopyWrapperKey, wrapper))
		}
	}
	if extra := extraOf(rec); len(extra) > 0 {
		attrs = appendExtra(attrs, extra)
	}
	if o.cfg.attrs != nil {
		attrs = appendExtra(attrs, o.cfg.attrs(r))
	}
	// What l.LogAttrs does, without checking Enabled a second time or
	// unwinding the stack for the caller's pc: that is always the same, the
	// call site below.
	r2 := slog.NewRecord(time.Now(), level, logMessage, callerPC())
	r2.AddAttrs(attrs...)
	_ = l.Handler().Handle(ctx, r2)
}

// logPC is the pc slog.Logger.LogAttrs would give Logger's records: the call
// site in (*logger).end. 0 until the first record.
var logPC atomic.Uintptr

// callerPC returns the pc of its caller's call site, found once: it must
// have the one caller, (*logger).end. A pc is the same for every call from
// one site, and the stack walk runtime.Callers makes is a good part of what
// a record costs beyond the handler's own work.
//
//go:noinline
func callerPC() uintptr {
	if pc := logPC.Load(); pc != 0 {
		return pc
	}
	var pcs [1]uintptr
	// skip [runtime.Callers, callerPC]
	runtime.Callers(2, pcs[:])
	logPC.Store(pcs[0])
	return pcs[0]
}

// appendExtra appends attributes of the user's to a record's, leaving
// out any whose key the record already has: fastpath's own win, and a log
// line never carries a key twice.
func appendExtra(attrs []slog.Attr, extra []attribute.KeyValue) []slog.Attr {
next:
	for _, kv := range extra {
		key := string(kv.Key)
		for _, a := range attrs {
			if a.Key == key {
				continue next
			}
		}
		attrs = append(attrs, slogAttr(kv))
	}
	return attrs
}

// slogAttr converts an OpenTelemetry attribute to a slog one of the same
// kind.
func slogAttr(kv attribute.KeyValue) slog.Attr {
	key := string(kv.Key)
	switch kv.Value.Type() {
	case attribute.BOOL:
		return slog.Bool(key, kv.Value.AsBool())
	case attribute.INT64:
		return slog.Int64(key, kv.Value.AsInt64())
	case attribute.FLOAT64:
		return slog.Float64(key, kv.Value.AsFloat64())
	case attribute.STRING:
		return slog.String(key, kv.Value.AsString())
	default: // slices
		return slog.Any(key, kv.Value.AsInterface())
	}
}

// hexIDs returns the trace and span ids of sc in hex, as TraceID.String and
// SpanID.String do, from one allocation instead of two.
func hexIDs(sc trace.SpanContext) (traceID, spanID string) {
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [2 * (len(tid) + len(sid))]byte
	hex.Encode(b[:], tid[:])
	hex.Encode(b[2*len(tid):], sid[:])
	s := string(b[:])
	return s[:2*len(tid)], s[2*len(tid):]
}

// millis returns d in milliseconds, to the nanosecond: the unit access logs
// use, in the key's name, where slog would write a time.Duration as an
// integer of nanoseconds without saying so.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// userAgent is r.UserAgent(): the first User-Agent value, looked up by its
// canonical key directly rather than canonicalising the name each time.
func userAgent(r *http.Request) string {
	if v := r.Header["User-Agent"]; len(v) > 0 {
		return v[0]
	}
	return ""
}
