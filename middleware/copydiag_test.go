package middleware

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/copynote"
)

// hides embeds a ResponseWriter, hiding its io.ReaderFrom, without Unwrap.
type hides struct{ http.ResponseWriter }

// hidesUnwrap hides io.ReaderFrom and has Unwrap.
type hidesUnwrap struct{ http.ResponseWriter }

func (h *hidesUnwrap) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// keeps has io.ReaderFrom and Unwrap.
type keeps struct{ http.ResponseWriter }

func (k keeps) ReadFrom(r io.Reader) (int64, error) {
	return k.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
}
func (k keeps) Unwrap() http.ResponseWriter { return k.ResponseWriter }

// TestBlame checks which writer of a chain is blamed for a copied file, and
// how it is named.
func TestBlame(t *testing.T) {
	base := &readFromRecorder{httptest.NewRecorder()} // has ReadFrom
	inner := &hidesUnwrap{base}
	const (
		hidesT       = "middleware.hides from github.com/fastpath-go/fastpath/middleware"
		hidesUnwrapT = "*middleware.hidesUnwrap from github.com/fastpath-go/fastpath/middleware"
		keepsT       = "middleware.keeps from github.com/fastpath-go/fastpath/middleware"
		baseT        = "*middleware.readFromRecorder from github.com/fastpath-go/fastpath/middleware"
	)
	// above returns the chain from w down to base, not included.
	above := func(w http.ResponseWriter) []http.ResponseWriter {
		var chain []http.ResponseWriter
		for _, c := range chainOf(w) {
			if c == http.ResponseWriter(base) {
				break
			}
			chain = append(chain, c)
		}
		return chain
	}
	tests := []struct {
		name  string
		chain []http.ResponseWriter
		want  string
	}{
		{"nothing above the bottom", above(base), ""},
		{"one wrapper without Unwrap", above(hides{base}), hidesT},
		{"one wrapper with Unwrap", above(inner), hidesUnwrapT},
		{"a mirror above the culprit", above(&hidesUnwrap{inner}), hidesUnwrapT},
		{"the walk stops at a writer without Unwrap", above(&hidesUnwrap{hides{keeps{base}}}), hidesT},
		{"a writer with ReadFrom above a culprit", above(keeps{inner}), hidesUnwrapT},
		{"one writer with ReadFrom that copies", above(keeps{base}), keepsT},
		{"several with ReadFrom: all named", above(keeps{keeps{base}}), keepsT + " or " + keepsT},
		{"to the end of the chain", chainOf(keeps{base}), keepsT + " or " + baseT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := blame(tt.chain); got != tt.want {
				t.Errorf("blamed %q, want %q", got, tt.want)
			}
		})
	}
}

// readFromRecorder is an httptest.ResponseRecorder with io.ReaderFrom.
type readFromRecorder struct{ *httptest.ResponseRecorder }

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	return io.Copy(r.ResponseRecorder, src)
}

// TestSourceReason checks what a ReadFrom source says by its kind.
func TestSourceReason(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reg, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	tests := []struct {
		name   string
		src    io.Reader
		copied bool
		want   CopyReason
	}{
		{"bytes", bytes.NewReader(nil), false, CopyReasonNotFile},
		{"bytes in a LimitedReader", io.LimitReader(strings.NewReader("x"), 1), false, CopyReasonNotFile},
		{"net/http's multi-range pipe", &io.LimitedReader{R: pr, N: 1}, false, CopyReasonMultiRange},
		{"a regular file", reg, true, ""},
		{"a device, not known to be copied", f, false, ""},
		{"a device that was copied", f, true, CopyReasonNotRegularFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceReason(tt.src, tt.copied); got != tt.want {
				t.Errorf("sourceReason = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCopiedMetric checks CopiedSizeMetric: a point per copied response with
// its reason (and the WithAttributes ones of that request, not another's),
// and none for a small body, which is no loss, or a body not offered for
// zero-copy.
func TestCopiedMetric(t *testing.T) {
	big := strings.Repeat("x", 10000)
	tel := newTelemetry(t)
	tier := WithAttributes(func(r *http.Request) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("app.tier", r.URL.Query().Get("tier"))}
	})
	h := Metrics(tier, WithMeterProvider(tel.mp))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/buffer": // not a file: certain to be copied
			w.(io.ReaderFrom).ReadFrom(strings.NewReader(big))
		case "/small":
			w.(io.ReaderFrom).ReadFrom(strings.NewReader("tiny"))
		case "/proxy": // the proxy's note wins over what the source says
			copynote.From(r.Context()).Copied(string(CopyReasonFlushInterval))
			w.(io.ReaderFrom).ReadFrom(strings.NewReader(big))
		case "/written": // bytes the handler made: nothing to say
			io.WriteString(w, big)
		}
	}))
	for _, target := range []string{"/buffer?tier=gold", "/buffer?tier=free", "/small?tier=gold", "/proxy?tier=gold", "/written?tier=gold"} {
		h.ServeHTTP(&readFromRecorder{httptest.NewRecorder()}, httptest.NewRequest("GET", target, nil))
	}
	m, ok := tel.collect(t)[CopiedSizeMetric]
	if !ok {
		t.Fatalf("no %s", CopiedSizeMetric)
	}
	got := map[string][2]int64{} // reason/tier -> count, sum
	for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
		reason, _ := dp.Attributes.Value(CopyReasonKey)
		tier, _ := dp.Attributes.Value("app.tier")
		route, _ := dp.Attributes.Value("http.route")
		if route.AsString() != "" {
			t.Errorf("point with route %q", route.AsString())
		}
		got[reason.AsString()+"/"+tier.AsString()] = [2]int64{int64(dp.Count), dp.Sum}
	}
	loss := int64(len(big) - sniffLen) // without Listener nothing went zero-copy
	want := map[string][2]int64{
		"not_file/gold":       {1, loss},
		"not_file/free":       {1, loss},
		"flush_interval/gold": {1, loss},
	}
	if len(got) != len(want) {
		t.Errorf("points %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: count, sum %v, want %v", k, got[k], w)
		}
	}
}

// resetting is a wrapper that zeroes itself once its handler returns, as a
// pooled writer is reset for reuse (gzhttp's): any method called on it then
// panics.
type resetting struct{ http.ResponseWriter }

func (r *resetting) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// TestDiagnosisAfterWrappersReturn guards the invariant copyState states:
// the record never calls a method of a writer above its own once the handler
// has returned. A wrapper reset for reuse by then must not panic the
// diagnosis, and is still named.
func TestDiagnosisAfterWrappersReturn(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.bin"), bytes.Repeat([]byte("a"), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	files := handlers.FileServer(root)
	logs, l := newCapture()
	srv := startServer(t, Logger(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &resetting{w}
		files.ServeHTTP(rw, r)
		rw.ResponseWriter = nil // back to the pool
	})), true)
	req, err := http.NewRequest("GET", srv.URL+"/a.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, srv.Client(), req)
	if resp.StatusCode != 200 || len(body) != 64<<10 {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	srv.Close()
	e := logs.only(t)
	if e.Attrs[CopyReasonKey] != string(CopyReasonNoReadFrom) || e.Attrs[CopyWrapperKey] != "*middleware.resetting from github.com/fastpath-go/fastpath/middleware" {
		t.Errorf("copy reason %v, wrapper %v", e.Attrs[CopyReasonKey], e.Attrs[CopyWrapperKey])
	}
}
