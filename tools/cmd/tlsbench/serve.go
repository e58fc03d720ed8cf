//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fastpath-go/fastpath/ktls"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// childReport is what a Go server says about its run when it stops: how
// the requests' connections were encrypted and what fastpath recorded.
type childReport struct {
	// Connections counts the requests by how their connection was
	// encrypted: "kernel", or "crypto/tls: " and ktls's fallback reason
	// (the fastpath stack); "crypto/tls" (net/http).
	Connections map[string]int
	// SendfileBytes is the sum of fastpath.server.response.sendfile.size,
	// -1 for net/http, which records nothing.
	SendfileBytes int64
	// ResponseBytes is the sum of http.server.response.body.size, -1 for
	// net/http.
	ResponseBytes int64
}

// serve runs the Go server of stack on addr, serving file over HTTPS with
// the certificate and key in the PEM files named, until standard input
// closes; then it writes its childReport to standard output as JSON.
func serve(stack, file, addr, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	files := benchproc.ServeFile(file)
	var (
		mu  sync.Mutex
		rep = childReport{Connections: map[string]int{}, SendfileBytes: -1, ResponseBytes: -1}
	)
	count := func(how string) {
		mu.Lock()
		rep.Connections[how]++
		mu.Unlock()
	}
	var h http.Handler
	var reader *sdkmetric.ManualReader
	switch stack {
	case sCryptoTLS:
		ln = tls.NewListener(ln, tlsConfig)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			count("crypto/tls")
			files.ServeHTTP(w, r)
		})
	case sKTLS:
		mp, rd, tp := benchproc.Providers()
		reader = rd
		defer mp.Shutdown(context.Background())
		defer tp.Shutdown(context.Background())
		r := chi.NewRouter()
		r.Use(middleware.Tracing(middleware.WithTracerProvider(tp)),
			middleware.Metrics(middleware.WithMeterProvider(mp)),
			middleware.Logger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
		r.Get("/"+fileName, func(w http.ResponseWriter, r *http.Request) {
			s, ok := ktls.FromContext(r.Context())
			switch {
			case !ok:
				count("not accepted by ktls")
			case s.Kernel:
				count("kernel")
			default:
				count("crypto/tls: " + string(s.Reason))
			}
			files.ServeHTTP(w, r)
		})
		h = r
		// The order of the package doc's example: the kernel TLS
		// connection's ReadFrom reaches Listener's counting connection.
		ln = ktls.NewListener(middleware.Listener(ln), tlsConfig)
	default:
		return errors.New("unknown stack " + stack)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(dropProbes{os.Stderr}, "", 0)}
	go srv.Serve(ln)
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return err
	}
	if reader != nil {
		rep.SendfileBytes = histogramSum(reader, middleware.SendfileSizeMetric)
		rep.ResponseBytes = histogramSum(reader, "http.server.response.body.size")
	}
	mu.Lock()
	defer mu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// dropProbes passes net/http's error log on, but for the TLS handshake
// errors of the connections benchproc.WaitListening opens and closes to
// see that the server listens.
type dropProbes struct{ w io.Writer }

func (d dropProbes) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) && bytes.HasSuffix(bytes.TrimSpace(p), []byte("EOF")) {
		return len(p), nil
	}
	return d.w.Write(p)
}

// histogramSum sums an int64 histogram's data points.
func histogramSum(reader *sdkmetric.ManualReader, name string) int64 {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		return -1
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[int64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					n += dp.Sum
				}
			}
		}
	}
	return n
}
