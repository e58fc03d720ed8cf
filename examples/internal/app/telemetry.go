package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Telemetry is the OpenTelemetry SDK setup of an example server.
type Telemetry struct {
	MeterProvider *sdkmetric.MeterProvider
	// TracerProvider is the SDK's when traces are exported; otherwise it
	// records no spans but makes their ids (see idsOnly).
	TracerProvider trace.TracerProvider
	sdkTracer      *sdktrace.TracerProvider // nil when traces are not exported
	// Prometheus serves the metrics: the Prometheus text format, or
	// OpenMetrics with exemplars (the trace_id and span_id of a sampled
	// request) to a scraper that asks for it with
	// Accept: application/openmetrics-text. The Go runtime's and the
	// process's own metrics (go_*, process_*) are on it too.
	Prometheus http.Handler
}

// NewTelemetry sets up metrics, always readable on the Prometheus handler,
// and traces. Both also go over OTLP when the OTEL_* environment variables
// ask for it: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER (otlp, console,
// none), or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT and the per-signal
// variants). With none of them set, nothing leaves the process, and no
// spans are recorded: requests still get trace and span ids, for the logs,
// the exemplars and propagation.
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the service.
func NewTelemetry(ctx context.Context, service string) (*Telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The SDK's default exemplar filter keeps measurements made inside a
	// sampled span (the middleware records with the request's span), and
	// the exporter passes them on as Prometheus exemplars.
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if otlpWanted("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("metric exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(reader))
	}
	var tp trace.TracerProvider = idsOnly{}
	var sdkTracer *sdktrace.TracerProvider
	if otlpWanted("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("span exporter: %w", err)
		}
		sdkTracer = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
		tp = sdkTracer
	}
	return &Telemetry{
		MeterProvider:  sdkmetric.NewMeterProvider(mopts...),
		TracerProvider: tp,
		sdkTracer:      sdkTracer,
		// Exemplars exist only in OpenMetrics; promhttp serves it to a
		// scraper that asks (Prometheus does) and the text format otherwise.
		Prometheus: promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}),
	}, nil
}

// otlpWanted reports whether the environment asks for an exporter: the
// signal's exporter variable is set (autoexport then reads it), or an OTLP
// endpoint is. autoexport alone would default to OTLP and try localhost when
// nothing is set.
func otlpWanted(exporterVar, endpointVar string) bool {
	return os.Getenv(exporterVar) != "" || os.Getenv(endpointVar) != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var err error
	if t.sdkTracer != nil {
		err = t.sdkTracer.Shutdown(ctx)
	}
	return errors.Join(err, t.MeterProvider.Shutdown(ctx))
}
