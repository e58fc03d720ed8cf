// Package app is the wiring the example servers share, none of which is what
// a reader of an example came for: flags and -h, the OpenTelemetry SDK
// providers (Prometheus on /metrics with exemplars and the Go runtime's and
// the process's own metrics; OTLP when the standard environment asks for it),
// batched JSON request logs, and an http.Server with timeouts, a banner, and
// a graceful shutdown that says what it drained. Each example's main.go holds
// the fastpath calls alone: the middleware in order with its options, the
// handlers, and middleware.Listener.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/fastpath-go/fastpath/ktls"
)

// Example is one example server: what it is called and how it serves.
type Example struct {
	Name string // the command's name, in its usage, errors and service name
	Doc  string // what it does, in a sentence, for -h
	// Addr is the default -addr. Each example has its own port, so they run
	// side by side.
	Addr string
	// Files makes the example serve a directory: the -root, -list and
	// -send-timeout flags, Server.Root, and a banner that suggests a
	// download.
	Files bool
	// Flags, when not nil, adds the example's own flags; Serve reads what
	// they set.
	Flags func(*flag.FlagSet)
	// Describe, for an example without Files, says what it serves, for the
	// banner: "proxying to http://127.0.0.1:8080".
	Describe func() string
	// Serve builds the example's handler and serves it with Server.Serve.
	Serve func(ctx context.Context, s *Server) error
}

// Server is what an example's Serve builds its handler from.
type Server struct {
	Config
	// Root is the directory served, for an example with Files.
	Root *os.Root
	// Listener listens on -addr; Serve wraps it in middleware.Listener.
	// With -tls-cert and -tls-key it is ktls.NewListener's, so its
	// connections are TLS, with kernel TLS where the kernel has it.
	Listener net.Listener
	// TLS is the TLS configuration of -tls-cert and -tls-key, or nil.
	TLS *tls.Config
	// Logger writes JSON records to standard output in batches (LogWriter).
	Logger *slog.Logger
	// TracerProvider, MeterProvider and Propagators are for the fastpath
	// middleware's WithTracerProvider, WithMeterProvider and WithPropagators.
	TracerProvider trace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	Propagators    propagation.TextMapPropagator
	// Metrics serves the metrics in the Prometheus text format, or in
	// OpenMetrics with exemplars (see Telemetry.Prometheus).
	Metrics http.Handler

	ex     Example
	stderr io.Writer
	ready  func(net.Addr)
}

// Main runs ex as a command: its flags from os.Args, until SIGINT or SIGTERM.
// It exits 0 after -h or -help, 2 on a flag it cannot parse and 1 on any
// other error.
func Main(ex Example) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, ex, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	var usage usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h or -help: the usage is printed, and asking for it is no error.
	case errors.As(err, &usage):
		os.Exit(2) // the flag package has said what was wrong, with the usage
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: %v\n", ex.Name, err)
		os.Exit(1)
	}
}

// Run runs ex with the command-line arguments args until ctx is done, with
// its logs on stdout and its banner, usage and shutdown line on stderr;
// ready, when not nil, learns the address once the server accepts
// connections. After -h or -help it returns an error matching flag.ErrHelp.
func Run(ctx context.Context, ex Example, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	cfg, err := parseFlags(ex, args, stderr)
	if err != nil {
		return err
	}
	s := &Server{Config: cfg, ex: ex, stderr: stderr, ready: ready}
	if ex.Files {
		if s.Root, err = os.OpenRoot(cfg.Root); err != nil {
			return err
		}
		defer s.Root.Close()
	}
	tel, err := NewTelemetry(ctx, "fastpath-"+ex.Name)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	s.TracerProvider, s.MeterProvider, s.Metrics = tel.TracerProvider, tel.MeterProvider, tel.Prometheus
	s.Propagators = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	// One write(2) per batch of records, at least every 100 ms, instead of
	// one per request; Close, after the server has stopped, writes the rest
	// (a crash loses at most the last 100 ms: see LogWriter).
	logs := NewLogWriter(stdout)
	defer logs.Close()
	s.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if s.Listener, err = net.Listen("tcp", cfg.Addr); err != nil {
		return err
	}
	defer s.Listener.Close()
	if cfg.TLSCert != "" {
		if s.TLS, err = loadTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
		// HTTPS downloads by sendfile: the kernel encrypts where it can
		// (ktls.NewListener), crypto/tls serves the rest, HTTP/2 included.
		// The example wraps this in middleware.Listener, which works in
		// either order.
		s.Listener = ktls.NewListener(s.Listener, s.TLS, ktls.WithLogger(s.Logger))
	}
	return ex.Serve(ctx, s)
}

// Mux is what Mount mounts on: a chi.Router or an *http.ServeMux.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount mounts /healthz and, unless -metrics-addr serves them on a listener
// of their own, the metrics on /metrics.
func (s *Server) Mount(m Mux) {
	m.Handle("/healthz", http.HandlerFunc(Healthz))
	if s.MetricsAddr == "" {
		m.Handle("/metrics", s.Metrics)
	}
}

// Plumbing reports whether r is for a route Mount mounts: health checks and
// scrapes, which are not traffic worth recording (middleware.WithSkip).
func Plumbing(r *http.Request) bool {
	return r.URL.Path == "/healthz" || r.URL.Path == "/metrics"
}

// Healthz answers health checks.
func Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// loadTLS loads a certificate and key for HTTPS, offering HTTP/2 and
// HTTP/1.1 (kernel TLS takes the HTTP/1.1 connections; see package ktls).
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// selfSigned reports whether c's leaf signed itself, so a client needs it
// as its own root (curl --cacert).
func selfSigned(c *tls.Config) bool {
	if c == nil || len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
	return err == nil && leaf.CheckSignatureFrom(leaf) == nil
}
