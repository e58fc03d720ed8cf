package benchproc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestServeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.bin")
	if err := WriteFile(path, 100); err != nil {
		t.Fatal(err)
	}
	if err := Warm(path); err != nil {
		t.Fatal(err)
	}
	h := ServeFile(path)
	req := httptest.NewRequest("GET", "/any/path", nil)
	req.Header.Set("Range", "bytes=10-12")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if want := string([]byte{70, 77, 84}); rec.Code != http.StatusPartialContent || rec.Body.String() != want {
		t.Errorf("bytes 10-12: status %d, body %q; want 206, %q", rec.Code, rec.Body.String(), want)
	}
	os.Remove(path)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("missing file: status %d, want 500", rec.Code)
	}
	if err := Warm(path); err == nil {
		t.Error("Warm of a missing file: no error")
	}
}

func TestProviders(t *testing.T) {
	mp, reader, tp := Providers()
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())
	_, span := tp.Tracer("t").Start(context.Background(), "s")
	if !span.SpanContext().IsSampled() {
		t.Error("span not sampled")
	}
	span.End()
	c, _ := mp.Meter("m").Int64Counter("c")
	c.Add(context.Background(), 3)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil || len(rm.ScopeMetrics) != 1 {
		t.Errorf("collected %d scopes, %v; want 1", len(rm.ScopeMetrics), err)
	}
}
