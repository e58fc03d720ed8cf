package benchproc

import (
	"context"
	"io"
	"net/http"
	"os"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ServeFile returns the net/http baseline the commands measure: a handler
// that opens file on every request and serves it with http.ServeContent,
// whatever the request's path.
func ServeFile(file string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, "open failed", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, "stat failed", http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	})
}

// Warm reads path once, so that the servers measured find it in the page
// cache.
func Warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// Providers returns OpenTelemetry SDK providers as a service runs them:
// every span sampled and exported (to nowhere), metrics aggregated in
// memory, for reader to collect.
func Providers() (mp *sdkmetric.MeterProvider, reader *sdkmetric.ManualReader, tp *sdktrace.TracerProvider) {
	reader = sdkmetric.NewManualReader()
	mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(discard{}))
	return mp, reader, tp
}

// discard is a span exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
