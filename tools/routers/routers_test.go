// Package routers checks that fastpath's middleware records the route of a
// router it does not know, through WithRoute: gorilla/mux, which keeps the
// matched route in the request it hands its middleware.
package routers

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/middleware"
)

// gorillaRoute reads the template of the route gorilla/mux matched.
func gorillaRoute(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if tmpl, err := rt.GetPathTemplate(); err == nil {
			return tmpl
		}
	}
	return ""
}

// records is what the stack recorded for one request.
type records struct {
	logRoute, spanName, metricRoute string
}

// stack returns Tracing, Metrics and Logger with WithRoute(route), and what
// they recorded once a request is done.
func stack(t *testing.T, route func(*http.Request) string) (func(http.Handler) http.Handler, func() records) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { mp.Shutdown(context.Background()); tp.Shutdown(context.Background()) })
	logs := &routeLog{}
	opt := middleware.WithRoute(route)
	mws := []func(http.Handler) http.Handler{
		middleware.Tracing(opt, middleware.WithTracerProvider(tp)),
		middleware.Metrics(opt, middleware.WithMeterProvider(mp)),
		middleware.Logger(slog.New(logs), opt),
	}
	chain := func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
	return chain, func() records {
		var rec records
		rec.logRoute = logs.route()
		if s := spans.GetSpans(); len(s) == 1 {
			rec.spanName = s[0].Name
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "http.server.request.duration" && len(h.DataPoints) == 1 {
					v, _ := h.DataPoints[0].Attributes.Value(attribute.Key("http.route"))
					rec.metricRoute = v.AsString()
				}
			}
		}
		return rec
	}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name   string
		route  func(*http.Request) string
		router func(mw func(http.Handler) http.Handler) http.Handler
		path   string
		want   string
	}{
		{
			name:  "gorilla/mux, mounted with r.Use",
			route: gorillaRoute,
			router: func(mw func(http.Handler) http.Handler) http.Handler {
				r := mux.NewRouter()
				r.Use(mux.MiddlewareFunc(mw))
				r.HandleFunc("/users/{id}/files/{name}", func(w http.ResponseWriter, r *http.Request) {}).Methods("GET")
				return r
			},
			path: "/users/42/files/a.txt",
			want: "/users/{id}/files/{name}",
		},
		{
			// gorilla/mux matches into a request of its own, which a
			// middleware outside the router never sees: no route, rather
			// than a raw path.
			name:  "gorilla/mux, wrapped from outside",
			route: gorillaRoute,
			router: func(mw func(http.Handler) http.Handler) http.Handler {
				r := mux.NewRouter()
				r.HandleFunc("/users/{id}/files/{name}", func(w http.ResponseWriter, r *http.Request) {}).Methods("GET")
				return mw(r)
			},
			path: "/users/42/files/a.txt",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, got := stack(t, tt.route)
			h := tt.router(mw)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			want := records{logRoute: tt.want, spanName: strings.TrimSpace("GET " + tt.want), metricRoute: tt.want}
			if g := got(); g != want {
				t.Errorf("recorded %+v, want %+v", g, want)
			}
		})
	}
}

// routeLog is a slog.Handler that keeps the http.route of the last record.
type routeLog struct {
	mu sync.Mutex
	r  string
}

func (h *routeLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *routeLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *routeLog) WithGroup(string) slog.Handler            { return h }
func (h *routeLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "http.route" {
			h.mu.Lock()
			h.r = a.Value.String()
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *routeLog) route() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.r
}
