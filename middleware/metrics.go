package middleware

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
)

// SendfileSizeMetric is the name of the histogram of response body bytes
// sent by sendfile(2), recorded only for connections accepted by Listener.
const SendfileSizeMetric = "fastpath.server.response.sendfile.size"

// SpliceSizeMetric is the name of the histogram of response body bytes moved
// to the client by splice(2), recorded only for connections accepted by
// Listener.
const SpliceSizeMetric = "fastpath.server.response.splice.size"

// Metrics returns middleware that records the OpenTelemetry HTTP server
// metrics for each request:
//
//	http.server.request.duration   histogram, s, the advised boundaries
//	http.server.active_requests    up-down counter, {request}
//	http.server.request.body.size  histogram, By, powers of 4 from 256 B to 4 GiB
//	http.server.response.body.size histogram, By, the same
//	fastpath.server.response.sendfile.size histogram, By, the same, with Listener only
//	fastpath.server.response.splice.size   histogram, By, the same, with Listener only
//	fastpath.server.response.copied.size   histogram, By, the same, only for bodies copied (see CopiedSizeMetric)
//
// with the attributes the conventions give them: http.request.method (unknown
// methods become _OTHER), url.scheme, http.response.status_code (absent when
// none was observed), http.route (a pattern, never a raw path),
// network.protocol.version and error.type (the ErrorType, when not empty).
// http.server.active_requests carries the method and scheme only. Response
// body sizes are right for files served through ReadFrom.
//
// Values are recorded with the request context, so an SDK that samples
// exemplars links them to the request's span. The meter comes from
// WithMeterProvider, or the global provider.
func Metrics(opts ...Option) func(http.Handler) http.Handler {
	cfg := newConfig(opts)
	m := newMetrics(cfg.meterProvider)
	m.attrs = cfg.attrs
	return func(next http.Handler) http.Handler {
		return newHandler(next, &cfg, m)
	}
}

type metrics struct {
	duration metric.Float64Histogram
	active   metric.Int64UpDownCounter
	reqBody  metric.Int64Histogram
	respBody metric.Int64Histogram
	sendfile metric.Int64Histogram
	splice   metric.Int64Histogram
	copied   metric.Int64Histogram

	sets       cache[attrKey, *attrEntry]
	copiedSets cache[copiedKey, *attrEntry]
	extraSets  cache[extraKey, *attrEntry]
	activeSets [len(knownMethods) + 1][2]*attrEntry     // by methodIndex and TLS
	attrs      func(*http.Request) []attribute.KeyValue // WithAttributes
}

// extra returns the WithAttributes attributes of r, if any.
func (m *metrics) extra(r *http.Request) []attribute.KeyValue {
	if m.attrs == nil {
		return nil
	}
	return m.attrs(r)
}

func newMetrics(mp metric.MeterProvider) *metrics {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(scopeName,
		metric.WithInstrumentationVersion(scopeVersion),
		metric.WithSchemaURL(semconv.SchemaURL))
	m := &metrics{}
	for i := range m.activeSets {
		method := methodOther
		if i < len(knownMethods) {
			method = knownMethods[i]
		}
		for j, scheme := range [2]string{"http", "https"} {
			m.activeSets[i][j] = newEntry(attrKey{method: method, scheme: scheme}.attributes())
		}
	}
	// An instrument that cannot be made is reported to the OpenTelemetry
	// error handler and replaced by a no-op, as the conventions' helpers do.
	duration, err := httpconv.NewServerRequestDuration(meter)
	handleErr(err)
	active, err := httpconv.NewServerActiveRequests(meter)
	handleErr(err)
	reqBody, err := httpconv.NewServerRequestBodySize(meter, sizeBuckets)
	handleErr(err)
	respBody, err := httpconv.NewServerResponseBodySize(meter, sizeBuckets)
	handleErr(err)
	m.duration, m.active, m.reqBody, m.respBody = duration.Inst(), active.Inst(), reqBody.Inst(), respBody.Inst()
	m.sendfile, err = meter.Int64Histogram(SendfileSizeMetric,
		metric.WithUnit("By"),
		sizeBuckets,
		metric.WithDescription("Size of HTTP server response bodies sent by sendfile(2)."))
	if err != nil {
		handleErr(err)
		m.sendfile = noop.Int64Histogram{}
	}
	m.copied, err = meter.Int64Histogram(CopiedSizeMetric,
		metric.WithUnit("By"),
		sizeBuckets,
		metric.WithDescription("Size of HTTP server response body bytes copied through user space that could have gone zero-copy, by reason."))
	if err != nil {
		handleErr(err)
		m.copied = noop.Int64Histogram{}
	}
	m.splice, err = meter.Int64Histogram(SpliceSizeMetric,
		metric.WithUnit("By"),
		sizeBuckets,
		metric.WithDescription("Size of HTTP server response bodies moved by splice(2)."))
	if err != nil {
		handleErr(err)
		m.splice = noop.Int64Histogram{}
	}
	return m
}

// sizeBuckets are the boundaries advised for the body size histograms, for
// which the conventions advise none: powers of four from 256 B to 4 GiB, so a
// file server's downloads land in buckets of their own instead of all above
// the SDK's default top boundary of 10,000 bytes. An SDK view overrides them.
var sizeBuckets = metric.WithExplicitBucketBoundaries(
	0, 1<<8, 1<<10, 1<<12, 1<<14, 1<<16, 1<<18, 1<<20, 1<<22, 1<<24, 1<<26, 1<<28, 1<<30, 1<<32)

func handleErr(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

func (m *metrics) start(_ *record, r *http.Request, ctx context.Context) context.Context {
	m.active.Add(ctx, 1, m.activeEntry(r).add...)
	return ctx
}

// activeEntry returns the attributes of http.server.active_requests for r:
// its method and scheme, which are the same when a request ends as when it
// starts. Both are bounded, so every set is made up front.
func (m *metrics) activeEntry(r *http.Request) *attrEntry {
	scheme := 0
	if r.TLS != nil {
		scheme = 1
	}
	return m.activeSets[methodIndex(r.Method)][scheme]
}

func (m *metrics) end(rec *record, r *http.Request) {
	method, scheme := requestMethod(r.Method), urlScheme(r)
	ctx := spanContext(r.Context(), rec)
	m.active.Add(ctx, -1, m.activeEntry(r).add...)

	k := attrKey{
		method:  method,
		scheme:  scheme,
		status:  rec.status(),
		route:   rec.route,
		proto:   protocolVersion(r),
		errType: rec.errorType(),
	}
	var e *attrEntry
	extra := m.extra(r)
	if len(extra) > 0 {
		e = m.entryFor(k, extra)
	} else {
		e = m.sets.get(k, func() *attrEntry { return newEntry(k.attributes()) })
	}
	m.duration.Record(ctx, rec.duration().Seconds(), e.record...)
	m.reqBody.Record(ctx, rec.reqBody.Load(), e.record...)
	m.respBody.Record(ctx, rec.body, e.record...)
	if n, ok := rec.sendfile(); ok {
		m.sendfile.Record(ctx, n, e.record...)
	}
	if n, ok := rec.splice(); ok {
		m.splice.Record(ctx, n, e.record...)
	}
	if reason, _ := rec.copyReason(); reason != "" {
		if n := rec.copiedLoss(reason); n > 0 {
			ck := copiedKey{attrKey: k, reason: reason}
			var ce *attrEntry
			if len(extra) > 0 {
				ce = newEntry(ck.attributes(extra)) // only a copied body pays
			} else {
				ce = m.copiedSets.get(ck, func() *attrEntry { return newEntry(ck.attributes(nil)) })
			}
			m.copied.Record(ctx, n, ce.record...)
		}
	}
}

// copiedKey is the attribute set of CopiedSizeMetric: a measurement's, and
// the copy reason.
type copiedKey struct {
	attrKey
	reason CopyReason
}

// attributes returns k's attributes with extra, fastpath's own last so they
// win on a shared key.
func (k copiedKey) attributes(extra []attribute.KeyValue) []attribute.KeyValue {
	kvs := append(append([]attribute.KeyValue(nil), extra...), k.attrKey.attributes()...)
	return append(kvs, attribute.String(CopyReasonKey, string(k.reason)))
}

// spanContext returns ctx, carrying the span Tracing started when Tracing runs
// inside this middleware, so exemplars and log handlers can see it.
func spanContext(ctx context.Context, rec *record) context.Context {
	if rec.span.IsValid() && !trace.SpanContextFromContext(ctx).IsValid() {
		return trace.ContextWithSpanContext(ctx, rec.span)
	}
	return ctx
}

// attrKey is what the attribute set of a measurement is made from. Every
// field has bounded cardinality: methods are normalised, routes are patterns.
type attrKey struct {
	method, scheme, route, proto string
	errType                      ErrorType
	status                       int
}

func (k attrKey) attributes() []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 7)
	kvs = append(kvs, semconv.HTTPRequestMethodKey.String(k.method), semconv.URLScheme(k.scheme))
	if k.status != 0 {
		kvs = append(kvs, semconv.HTTPResponseStatusCode(k.status))
	}
	if k.route != "" {
		kvs = append(kvs, semconv.HTTPRoute(k.route))
	}
	if k.proto != "" {
		kvs = append(kvs, semconv.NetworkProtocolVersion(k.proto))
	}
	if k.errType != "" {
		kvs = append(kvs, semconv.ErrorTypeKey.String(string(k.errType)))
	}
	return kvs
}

// attrEntry is an attribute set with the options that record it, made once
// so that recording allocates nothing.
type attrEntry struct {
	set    attribute.Set
	record []metric.RecordOption
	add    []metric.AddOption
}

func newEntry(kvs []attribute.KeyValue) *attrEntry {
	set := attribute.NewSet(kvs...)
	return &attrEntry{
		set:    set,
		record: []metric.RecordOption{metric.WithAttributeSet(set)},
		add:    []metric.AddOption{metric.WithAttributeSet(set)},
	}
}

// extraKey identifies an attribute set made of an attrKey's attributes and
// the WithAttributes ones.
type extraKey struct {
	attrKey
	extra attribute.Distinct
}

// entryFor returns the entry of k plus extra: the extra attributes are made
// into a set per request (that is their cost), and the combined entry is
// cached.
func (m *metrics) entryFor(k attrKey, extra []attribute.KeyValue) *attrEntry {
	xs := attribute.NewSet(extra...)
	return m.extraSets.get(extraKey{attrKey: k, extra: xs.Equivalent()}, func() *attrEntry {
		// fastpath's own attributes last, so they win on a shared key.
		return newEntry(append(xs.ToSlice(), k.attributes()...))
	})
}
