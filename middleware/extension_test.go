package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestWithRoute checks that WithRoute's route is used when chi and ServeMux
// give none, and that chi's is used when the function returns "".
func TestWithRoute(t *testing.T) {
	custom := WithRoute(func(r *http.Request) string {
		if strings.HasPrefix(r.URL.Path, "/custom/") {
			return "/custom/{x}"
		}
		return ""
	})
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	r := chi.NewRouter()
	r.Get("/chi/{id}", plain)
	r.Get("/custom/*", plain)
	tests := []struct {
		name    string
		handler http.Handler
		path    string
		want    string
	}{
		{"no router", plain, "/custom/42", "/custom/{x}"},
		{"no router, function gives none", plain, "/other", ""},
		{"the function wins over chi", r, "/custom/42", "/custom/{x}"},
		{"chi when the function gives none", r, "/chi/7", "/chi/{id}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			logs, l := newCapture()
			h := Tracing(custom, WithTracerProvider(tel.tp), WithPropagators(propagation.TraceContext{}))(
				Metrics(custom, WithMeterProvider(tel.mp))(Logger(l, custom)(tt.handler)))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tt.path, nil))

			if got, _ := logs.only(t).Attrs["http.route"].(string); got != tt.want {
				t.Errorf("log http.route %q, want %q", got, tt.want)
			}
			wantName := "GET"
			if tt.want != "" {
				wantName += " " + tt.want
			}
			if got := tel.spans.GetSpans()[0].Name; got != wantName {
				t.Errorf("span name %q, want %q", got, wantName)
			}
			points := histogramPoints(t, tel.collect(t)["http.server.request.duration"])
			for set := range points {
				if has := strings.Contains(set, "http.route="+tt.want+" "); has != (tt.want != "") || len(points) != 1 {
					t.Errorf("metric attributes %v, want one set with http.route %q", points, tt.want)
				}
			}
			if len(points) == 0 {
				t.Error("no duration recorded")
			}
		})
	}
}

// TestWithSpanName checks that the name function is called at the start and
// at the end, with the route known at each, and names the span.
func TestWithSpanName(t *testing.T) {
	tel := newTelemetry(t)
	var calls []string
	name := WithSpanName(func(r *http.Request, route string) string {
		calls = append(calls, route)
		return "files " + r.Method + " " + route
	})
	r := chi.NewRouter()
	r.Use(Tracing(name, WithTracerProvider(tel.tp)))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))
	if want := []string{"", "/users/{id}"}; !slices.Equal(calls, want) {
		t.Errorf("name function called with routes %q, want %q", calls, want)
	}
	if got := tel.spans.GetSpans()[0].Name; got != "files GET /users/{id}" {
		t.Errorf("span name %q, want %q", got, "files GET /users/{id}")
	}
}

// TestWithAttributes checks that each middleware adds the hook's attributes
// to its own signal, with their types, and that fastpath's own attributes
// win where a key is shared.
func TestWithAttributes(t *testing.T) {
	tel := newTelemetry(t)
	logs, l := newCapture()
	type tierKey struct{}
	extra := WithAttributes(func(r *http.Request) []attribute.KeyValue {
		tier, _ := r.Context().Value(tierKey{}).(*string)
		return []attribute.KeyValue{
			attribute.String("app.tier", *tier),
			attribute.Int("app.shard", 3),
			attribute.Bool("app.cached", true),
			attribute.Float64("app.weight", 0.5),
			attribute.StringSlice("app.tags", []string{"a", "b"}),
			attribute.Int("http.response.status_code", 999), // fastpath's own wins
		}
	})
	h := Tracing(extra, WithTracerProvider(tel.tp))(Metrics(extra, WithMeterProvider(tel.mp))(Logger(l, extra)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The handler decides the value; the hook reads it afterwards.
			*r.Context().Value(tierKey{}).(*string) = "gold"
			w.WriteHeader(http.StatusAccepted)
		}))))
	tier := "unset"
	req := httptest.NewRequest("POST", "/orders", nil)
	req = req.WithContext(context.WithValue(req.Context(), tierKey{}, &tier))
	h.ServeHTTP(httptest.NewRecorder(), req)

	e := logs.only(t)
	wantLog := map[string]any{"app.tier": "gold", "app.shard": int64(3), "app.cached": true, "app.weight": 0.5, "http.response.status_code": int64(202)}
	for k, want := range wantLog {
		if got := e.Attrs[k]; got != want {
			t.Errorf("log %s = %v (%T), want %v (%T)", k, got, got, want, want)
		}
	}
	if got := fmt.Sprint(e.Attrs["app.tags"]); got != "[a b]" {
		t.Errorf("log app.tags = %s, want [a b]", got)
	}
	if n := strings.Count(strings.Join(e.Keys, " "), "http.response.status_code"); n != 1 {
		t.Errorf("log has http.response.status_code %d times, want once", n)
	}

	spanAttrs := map[string]string{}
	for _, kv := range tel.spans.GetSpans()[0].Attributes {
		spanAttrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{"app.tier": "gold", "app.shard": "3", "app.cached": "true", "app.weight": "0.5", "app.tags": `["a","b"]`, "http.response.status_code": "202"} {
		if got := spanAttrs[k]; got != want {
			t.Errorf("span %s = %q, want %q", k, got, want)
		}
	}

	want := `app.cached=true app.shard=3 app.tags=["a","b"] app.tier=gold app.weight=0.5 http.request.method=POST http.response.status_code=202 network.protocol.version=1.1 url.scheme=http`
	for _, name := range []string{"http.server.request.duration", "http.server.response.body.size"} {
		var sets []string
		for set := range histogramPoints(t, tel.collect(t)[name]) {
			sets = append(sets, set)
		}
		if len(sets) != 1 || sets[0] != want {
			t.Errorf("%s attributes %v, want [%s]", name, sets, want)
		}
	}
}

// TestSetAttributes checks that what a handler adds with SetAttributes
// reaches the log record and the request's span, with the documented
// precedence: a later value replaces an earlier one, SetAttributes wins over
// WithAttributes, and fastpath's own keys win over both.
func TestSetAttributes(t *testing.T) {
	with := WithAttributes(func(*http.Request) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("app.tier", "from-option"), attribute.String("app.region", "eu")}
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		SetAttributes(ctx, attribute.String("app.order", "first"), attribute.String("app.tier", "gold"))
		SetAttributes(ctx) // nothing
		done := make(chan struct{})
		go func() { // from another goroutine, before the handler returns
			defer close(done)
			SetAttributes(ctx, attribute.Int("app.items", 3), attribute.Int("http.response.status_code", 999))
		}()
		<-done
		SetAttributes(ctx, attribute.String("app.order", "A-7"))
		w.WriteHeader(http.StatusAccepted)
	})
	wantLog := map[string]any{"app.order": "A-7", "app.tier": "gold", "app.items": int64(3), "app.region": "eu", "http.response.status_code": int64(202)}
	wantSpan := map[string]string{"app.order": "A-7", "app.tier": "gold", "app.items": "3", "app.region": "eu", "http.response.status_code": "202"}

	tests := []struct {
		name string
		// stack wraps h; logged reports whether it has Logger.
		stack  func(tel *telemetry, l *slog.Logger, h http.Handler) http.Handler
		logged bool
		// spanWant is what the one span carries of wantSpan's keys.
		spanWant map[string]string
	}{
		{"Tracing, Metrics, Logger", func(tel *telemetry, l *slog.Logger, h http.Handler) http.Handler {
			return Tracing(with, WithTracerProvider(tel.tp))(Metrics(WithMeterProvider(tel.mp))(Logger(l, with)(h)))
		}, true, wantSpan},
		{"Logger outside Tracing", func(tel *telemetry, l *slog.Logger, h http.Handler) http.Handler {
			return Logger(l, with)(Tracing(with, WithTracerProvider(tel.tp))(h))
		}, true, wantSpan},
		{"a handler's own child span does not take them", func(tel *telemetry, l *slog.Logger, h http.Handler) http.Handler {
			child := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, span := tel.tp.Tracer("app").Start(r.Context(), "child")
				h.ServeHTTP(w, r.WithContext(ctx))
				span.End()
			})
			return Tracing(with, WithTracerProvider(tel.tp))(Logger(l, with)(child))
		}, true, wantSpan},
		{"Logger and another library's span", func(tel *telemetry, l *slog.Logger, h http.Handler) http.Handler {
			other := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, span := tel.tp.Tracer("other").Start(r.Context(), "other")
				defer span.End()
				Logger(l, with)(h).ServeHTTP(w, r.WithContext(ctx))
			})
			return other
		}, true, map[string]string{"app.order": "A-7", "app.tier": "gold", "app.items": "3", "http.response.status_code": "999"}},
		{"no fastpath middleware", func(tel *telemetry, l *slog.Logger, h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, span := tel.tp.Tracer("other").Start(r.Context(), "other")
				defer span.End()
				h.ServeHTTP(w, r.WithContext(ctx))
			})
		}, false, map[string]string{"app.order": "A-7", "app.tier": "gold", "app.items": "3", "http.response.status_code": "999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			logs, l := newCapture()
			tt.stack(tel, l, handler).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/orders", nil))

			if tt.logged {
				e := logs.only(t)
				for k, want := range wantLog {
					if got := e.Attrs[k]; got != want {
						t.Errorf("log %s = %v (%T), want %v (%T)", k, got, got, want, want)
					}
				}
				for _, k := range []string{"app.order", "app.tier", "http.response.status_code"} {
					if n := slices.Index(e.Keys, k); n < 0 || slices.Index(e.Keys[n+1:], k) >= 0 {
						t.Errorf("log keys %v: want %s exactly once", e.Keys, k)
					}
				}
			}
			var server *tracetest.SpanStub
			spans := tel.spans.GetSpans()
			for i := range spans {
				if spans[i].Name != "child" {
					server = &spans[i]
				} else if len(spans[i].Attributes) != 0 {
					t.Errorf("the handler's child span has %v, want none", spans[i].Attributes)
				}
			}
			if server == nil {
				t.Fatalf("no server span among %d", len(spans))
			}
			got := map[string]string{}
			for _, kv := range server.Attributes {
				if _, ok := wantSpan[string(kv.Key)]; ok {
					got[string(kv.Key)] = kv.Value.Emit()
				}
			}
			if !maps.Equal(got, tt.spanWant) {
				t.Errorf("span %q attributes %v, want %v", server.Name, got, tt.spanWant)
			}
		})
	}
}
