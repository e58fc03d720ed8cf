package app

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// idsOnly is the TracerProvider when no trace exporter is configured. The
// SDK's TracerProvider with no span processor still builds every span in
// full (its attributes and their copies, a tenth of a small file's cost)
// and drops it at End. idsOnly builds none, but gives every request the
// trace and span ids the SDK's default sampler would (a new sampled trace,
// or the propagated parent's trace and sampling decision), so the log
// records' trace_id and span_id, the metrics' exemplars and outgoing
// traceparent headers are as before.
type idsOnly struct{ embedded.TracerProvider }

func (idsOnly) Tracer(string, ...trace.TracerOption) trace.Tracer { return idsTracer{} }

type idsTracer struct{ embedded.Tracer }

// Start returns ctx carrying a non-recording span with a new span id, in
// the parent's trace when ctx has a valid parent, else in a new sampled
// one.
func (idsTracer) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.SpanContextConfig{TraceFlags: trace.FlagsSampled}
	if parent := trace.SpanContextFromContext(ctx); parent.IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	} else {
		for !cfg.TraceID.IsValid() {
			binary.NativeEndian.PutUint64(cfg.TraceID[:8], rand.Uint64())
			binary.NativeEndian.PutUint64(cfg.TraceID[8:], rand.Uint64())
		}
	}
	for !cfg.SpanID.IsValid() {
		binary.NativeEndian.PutUint64(cfg.SpanID[:], rand.Uint64())
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
	return ctx, trace.SpanFromContext(ctx)
}
