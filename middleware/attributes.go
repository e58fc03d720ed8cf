package middleware

import (
	"context"
	"net/http"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/internal/copynote"
)

// Two ways to add attributes of your own to what fastpath records of a
// request: WithAttributes, a function of the request given to each
// middleware that should carry them (metrics included), and SetAttributes,
// called from the handler with what it learned while serving (logs and
// spans only). fastpath's own attributes win on a shared key in both.

// WithAttributes makes the middleware add the attributes attrs returns to
// what it records for each request: Logger adds them to the log record,
// Tracing to the span, Metrics to the attributes of every measurement but
// http.server.active_requests. attrs runs once the handler has returned, with
// the request the middleware passed on. Give the option to the middlewares
// whose signals should carry the attributes.
//
// For Metrics, every distinct set of values is a time series of its own:
// return values from a small, fixed set (a tenant tier, an API version),
// never ids, names or paths. Logs and spans have no such limit; for values
// only the handler knows, SetAttributes is simpler.
func WithAttributes(attrs func(r *http.Request) []attribute.KeyValue) Option {
	return optionFunc(func(c *config) { c.attrs = attrs })
}

// SetAttributes adds attributes to the request's log record (Logger) and
// span, from inside the handler or anything it calls with the request's
// context: an order id, a customer, a cache verdict. A later value for the
// same key replaces an earlier one, a value set here wins over WithAttributes
// on a shared key, and fastpath's own keys win over both. Metrics never see
// them, so ids are fine here.
//
// The span is the server span fastpath's Tracing started, even when the
// handler has started spans of its own below it; without Tracing, the span in
// ctx (another library's, say) gets the attributes at once. Without any
// fastpath middleware on the request, only that span gets them. It is safe to
// call from several goroutines; it costs nothing for requests that do not
// call it.
func SetAttributes(ctx context.Context, attrs ...attribute.KeyValue) {
	if len(attrs) == 0 {
		return
	}
	rec, _ := ctx.Value(copynote.Key{}).(*record)
	if rec == nil || !rec.span.IsValid() {
		// No fastpath span to add them to when it ends: the span in ctx
		// gets them now (a no-op span when there is none).
		trace.SpanFromContext(ctx).SetAttributes(attrs...)
	}
	if rec != nil {
		e := rec.extra.Load()
		if e == nil {
			rec.extra.CompareAndSwap(nil, new(extraAttrs))
			e = rec.extra.Load()
		}
		e.set(attrs)
	}
}

// extraAttrs holds what SetAttributes added to a request. The record points
// to one only once SetAttributes is called, so requests that do not call it
// carry one nil pointer.
type extraAttrs struct {
	mu    sync.Mutex
	attrs []attribute.KeyValue
}

// set adds attrs, replacing the value of a key already present.
func (e *extraAttrs) set(attrs []attribute.KeyValue) {
	e.mu.Lock()
	defer e.mu.Unlock()
next:
	for _, kv := range attrs {
		for i := range e.attrs {
			if e.attrs[i].Key == kv.Key {
				e.attrs[i] = kv
				continue next
			}
		}
		e.attrs = append(e.attrs, kv)
	}
}

// extraOf returns the attributes SetAttributes added to rec's request so
// far; the caller must not modify them.
func extraOf(rec *record) []attribute.KeyValue {
	e := rec.extra.Load()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attrs[:len(e.attrs):len(e.attrs)]
}
