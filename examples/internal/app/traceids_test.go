package app

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestIDsOnly checks the ids idsOnly gives: a new sampled trace without a
// parent, the parent's trace, flags and state with one, a new span id each
// time, and no recording.
func TestIDsOnly(t *testing.T) {
	tr := idsOnly{}.Tracer("test")
	ctx, span := tr.Start(context.Background(), "GET")
	sc := span.SpanContext()
	if !sc.IsValid() || !sc.IsSampled() || span.IsRecording() || !trace.SpanContextFromContext(ctx).Equal(sc) {
		t.Fatalf("root: span context %v (sampled %v), recording %v", sc, sc.IsSampled(), span.IsRecording())
	}
	_, again := tr.Start(context.Background(), "GET")
	if again.SpanContext().TraceID() == sc.TraceID() || again.SpanContext().SpanID() == sc.SpanID() {
		t.Errorf("two roots share ids: %v and %v", sc, again.SpanContext())
	}

	state, err := trace.ParseTraceState("k=v")
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		parent := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{1, 2, 3},
			SpanID:     trace.SpanID{4, 5, 6},
			TraceFlags: flags,
			TraceState: state,
			Remote:     true,
		})
		_, child := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "GET")
		c := child.SpanContext()
		if c.TraceID() != parent.TraceID() || c.SpanID() == parent.SpanID() || !c.SpanID().IsValid() ||
			c.TraceFlags() != flags || c.TraceState().String() != "k=v" || c.IsRemote() {
			t.Errorf("child of %v (flags %v): %v (flags %v, state %q, remote %v)", parent, flags, c, c.TraceFlags(), c.TraceState(), c.IsRemote())
		}
	}
}
