package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

var update = flag.Bool("update", false, "rewrite docs/compat.md with the table this code generates")

// docPath is the committed table, relative to this package.
var docPath = filepath.Join("..", "..", "..", "docs", "compat.md")

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

// TestGolden regenerates the whole matrix in-process and compares it with
// the committed docs/compat.md, leaving out the machine, Go version, date
// and file size lines. Regenerate with
//
//	go test ./tools/cmd/compat -run TestGolden -update
func TestGolden(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	doc, err := generate(ctx, defaultFileSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated the matrix (%s file) in %.1fs", sizeName(defaultFileSize), time.Since(start).Seconds())
	if *update {
		if raceEnabled {
			t.Fatal("regenerate without -race: the race detector shrinks the file, and the header would say so")
		}
		if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", docPath)
		return
	}
	old, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./tools/cmd/compat -update)", err)
	}
	if d := diff(string(old), doc); d != "" {
		t.Errorf("%s no longer matches the code; regenerate it with go test ./tools/cmd/compat -update (or go run ./tools/cmd/compat) and review:\n%s", docPath, d)
	}
}

// TestRows checks the table of rows itself: unique ids, every module found
// in the build information, enough rows and modules.
func TestRows(t *testing.T) {
	ids := map[string]bool{}
	names := map[string]bool{}
	modules := map[string]bool{}
	for _, r := range rows {
		if r.id == "" || ids[r.id] {
			t.Errorf("row id %q is empty or repeated", r.id)
		}
		if names[r.name] || strings.Contains(r.name, "|") {
			t.Errorf("row name %q is repeated or has a |", r.name)
		}
		ids[r.id], names[r.name] = true, true
		if _, err := moduleVersion(r.module); err != nil {
			t.Errorf("%s: %v", r.id, err)
		}
		if r.module != modSelf && r.module != modStd {
			modules[r.module] = true
		}
		if r.new().mw == nil {
			t.Errorf("%s: no middleware", r.id)
		}
	}
	if len(rows) < 20 || len(modules) < 6 {
		t.Errorf("%d rows from %d modules, want at least 20 from 6", len(rows), len(modules))
	}
}

// TestDiagnosis checks the diagnostic request on a row that keeps the fast
// path (every copy is net/http's own), one whose writer hides io.ReaderFrom
// (http.ServeContent copies), and one whose ReadFrom copies.
func TestDiagnosis(t *testing.T) {
	f, err := newTestFile(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"chi-logger":       "",
		"control":          serveContentCopy,
		"gorilla-compress": "github.com/gorilla/handlers.(*compressResponseWriter).ReadFrom",
		"httplog-body":     "github.com/go-chi/chi/v5/middleware.(*httpFancyWriter).ReadFrom",
	} {
		m, err := measure(context.Background(), rowByID(id), diag, f)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := culprit(m.server.Initiators); got != want {
			t.Errorf("%s: culprit %q, want %q (initiators %q)", id, got, want, m.server.Initiators)
		}
	}
}

// rfWriter is a ResponseWriter with ReadFrom, as net/http's is.
type rfWriter struct{ http.ResponseWriter }

func (rfWriter) ReadFrom(io.Reader) (int64, error) { return 0, nil }

// unwrapping hides ReadFrom but has Unwrap.
type unwrapping struct{ w http.ResponseWriter }

func (u *unwrapping) Header() http.Header         { return u.w.Header() }
func (u *unwrapping) Write(p []byte) (int, error) { return u.w.Write(p) }
func (u *unwrapping) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u *unwrapping) Unwrap() http.ResponseWriter { return u.w }

// opaque hides ReadFrom and Unwrap, and keeps the writer in an unexported
// field, as net/http's timeoutWriter does.
type opaque struct {
	n int
	w http.ResponseWriter
}

func (o *opaque) Header() http.Header         { return o.w.Header() }
func (o *opaque) Write(p []byte) (int, error) { return o.w.Write(p) }
func (o *opaque) WriteHeader(code int)        { o.w.WriteHeader(code) }

func TestWalkWriters(t *testing.T) {
	base := httptest.NewRecorder()
	chain := walkWriters(&opaque{w: &unwrapping{w: &testutil.CountingWriter{ResponseWriter: base}}})
	want := []link{
		{Type: "*main.opaque", GoType: "*main.opaque"},
		{Type: "*main.unwrapping", GoType: "*main.unwrapping"},
		{Type: "*testutil.CountingWriter", GoType: "*testutil.CountingWriter"},
		{Type: "*httptest.ResponseRecorder", GoType: "*httptest.ResponseRecorder"},
	}
	if len(chain) != len(want) {
		t.Fatalf("chain %v, want %v", chain, want)
	}
	for i := range want {
		if chain[i] != want[i] {
			t.Errorf("link %d: %v, want %v", i, chain[i], want[i])
		}
	}
	if _, _, ok := hider(chain); ok {
		t.Errorf("hider found in a chain without ReadFrom: %v", chain)
	}

	// net/http's writer has ReadFrom; the first writer above it without
	// one is the hider.
	chain = walkWriters(&opaque{w: &unwrapping{w: rfWriter{httptest.NewRecorder()}}})
	h, w, ok := hider(chain)
	if !ok || h.Type != "*main.unwrapping" || !w.ReadFrom {
		t.Errorf("hider %v wrapping %v (%v) in %v, want *main.unwrapping", h, w, ok, chain)
	}
}

func TestCells(t *testing.T) {
	kept := measurement{client: response{Body: 1 << 20}, server: observation{Sendfile: 1<<20 - sniffLen}}
	lost := measurement{client: response{Body: 1 << 20, ContentEncoding: "gzip", ContentLength: -1}}
	partly := measurement{client: response{Body: 1 << 20}, server: observation{Sendfile: 1 << 19}}
	if !kept.kept() || lost.kept() || partly.kept() {
		t.Fatal("kept() is wrong")
	}
	if got := sendfileCell(kept); got != "yes (100.0%)" {
		t.Errorf("kept cell %q", got)
	}
	if got := sendfileCell(lost); got != "**no** (0.0%)" {
		t.Errorf("lost cell %q", got)
	}
	if got := sendfileCell(partly); got != "**partly** (50.0%)" {
		t.Errorf("partly cell %q", got)
	}
	if got := headerChange(lost); !strings.Contains(got, "Content-Encoding: gzip") {
		t.Errorf("header change %q", got)
	}
	if got := headerChange(kept); got != "" {
		t.Errorf("header change of a kept response %q", got)
	}
	doc := "# T\n\n- Machine: a\n- Go: b\n- Generated: c\n- File: d\n\n| x |\n"
	if d := diff(doc, strings.ReplaceAll(doc, "- Machine: a", "- Machine: z")); d != "" {
		t.Errorf("an environment line counted as a difference: %s", d)
	}
	if d := diff(doc, strings.ReplaceAll(doc, "| x |", "| y |")); d == "" {
		t.Error("a table change went unnoticed")
	}
}

func TestReason(t *testing.T) {
	const (
		mib     = 1 << 20
		counter = "*testutil.CountingWriter from github.com/fastpath-go/fastpath/internal/testutil"
		fancy   = "github.com/go-chi/chi/v5/middleware.(*httpFancyWriter).ReadFrom"
	)
	// Chains the file handler may get: a wrapper without ReadFrom over
	// fastpath's, and one that has it.
	hiding := []link{
		{Type: "*testutil.CountingWriter", GoType: "*testutil.CountingWriter"},
		{Type: "*middleware.recordWriter", GoType: "*middleware.recordWriter", ReadFrom: true},
	}
	keeping := []link{{Type: "*middleware.httpFancyWriter", GoType: "*middleware.httpFancyWriter", ReadFrom: true}}
	kept := measurement{client: response{Body: 64 * mib, ContentLength: 64 * mib}, server: observation{Sendfile: 64*mib - sniffLen, Chain: keeping}}
	lost := func(reason middleware.CopyReason, wrapper string, chain []link) measurement {
		return measurement{
			client: response{Body: 64 * mib, ContentLength: 64 * mib},
			server: observation{Chain: chain, Logged: logged{CopyReason: reason, CopyWrapper: wrapper}},
		}
	}
	gzipped := func(m measurement) measurement {
		m.client.ContentEncoding, m.client.ContentLength = "gzip", -1
		return m
	}
	zero := int64(0)
	reported0 := kept
	reported0.reported = &zero

	for _, tc := range []struct {
		name      string
		full, rng measurement
		culprit   string
		want      string
	}{
		{
			name: "kept",
			full: kept, rng: kept,
			want: "—",
		},
		{
			name: "kept, with a size of 0 reported",
			full: reported0, rng: reported0,
			want: "kept, but its size counts only `Write`: the file goes by `ReadFrom`, which it passes through uncounted",
		},
		{
			name: "fastpath names the wrapper compat finds",
			full: lost(middleware.CopyReasonNoReadFrom, counter, hiding), rng: lost(middleware.CopyReasonNoReadFrom, counter, hiding),
			culprit: serveContentCopy,
			want:    "`no_readfrom`: `*testutil.CountingWriter` from `github.com/fastpath-go/fastpath/internal/testutil`",
		},
		{
			name: "a wrapper without a package",
			full: lost(middleware.CopyReasonNoReadFrom, "struct { http.ResponseWriter }", nil), rng: lost(middleware.CopyReasonNoReadFrom, "struct { http.ResponseWriter }", nil),
			culprit: serveContentCopy,
			want:    "`no_readfrom`: `struct { http.ResponseWriter }`",
		},
		{
			name: "fastpath names another wrapper than compat",
			full: lost(middleware.CopyReasonNoReadFrom, "*gzip.outer from example.com/gzip", hiding), rng: lost(middleware.CopyReasonNoReadFrom, "*gzip.outer from example.com/gzip", hiding),
			culprit: serveContentCopy,
			want:    "`no_readfrom`: `*gzip.outer` from `example.com/gzip`; compat: `*testutil.CountingWriter` is the writer that hides `ReadFrom` (it wraps `*middleware.recordWriter`, which has)",
		},
		{
			name: "encoded says the compression, compat the ReadFrom that copies",
			full: gzipped(lost(middleware.CopyReasonEncoded, "", keeping)), rng: gzipped(lost(middleware.CopyReasonEncoded, "", keeping)),
			culprit: "github.com/gorilla/handlers.(*compressResponseWriter).ReadFrom",
			want:    "`encoded`; compat: `handlers.(*compressResponseWriter).ReadFrom` copies the file through `Write` (`io.Copy`) instead of passing it down",
		},
		{
			name: "no_readfrom on a compressed full download",
			full: gzipped(lost(middleware.CopyReasonNoReadFrom, counter, hiding)), rng: lost(middleware.CopyReasonNoReadFrom, counter, hiding),
			culprit: serveContentCopy,
			want:    "`no_readfrom`: `*testutil.CountingWriter` from `github.com/fastpath-go/fastpath/internal/testutil`; compat, full download: compressed on the fly (`Content-Encoding: gzip` set, `Content-Length` removed)",
		},
		{
			name: "chunked says the missing Content-Length",
			full: func() measurement {
				m := lost(middleware.CopyReasonChunked, "", keeping)
				m.client.ContentLength = -1
				return m
			}(),
			rng:  lost(middleware.CopyReasonChunked, "", keeping),
			want: "`chunked`",
		},
		{
			name: "silent: a ReadFrom that copies",
			full: lost("", "", keeping), rng: lost("", "", keeping),
			culprit: fancy,
			want:    "fastpath cannot tell; compat: `middleware.(*httpFancyWriter).ReadFrom` copies the file through `Write` (`io.Copy`) instead of passing it down",
		},
		{
			name: "silent: a handler fastpath does not know",
			full: lost("", "", hiding), rng: lost("", "", hiding),
			culprit: serveContentCopy,
			want:    "fastpath cannot tell; compat: `*testutil.CountingWriter` has no `ReadFrom` (it wraps `*middleware.recordWriter`, which has)",
		},
		{
			name: "silent: nothing found",
			full: lost("", "", keeping), rng: lost("", "", keeping),
			want: "fastpath cannot tell; compat found nothing either",
		},
		{
			name: "the two downloads differ",
			full: lost(middleware.CopyReasonNoReadFrom, counter, hiding), rng: lost("", "", hiding),
			culprit: serveContentCopy,
			want:    "full download: `no_readfrom`: `*testutil.CountingWriter` from `github.com/fastpath-go/fastpath/internal/testutil`; range: fastpath cannot tell; compat, range: `*testutil.CountingWriter` has no `ReadFrom` (it wraps `*middleware.recordWriter`, which has)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &result{full: tc.full, rng: tc.rng, culprit: tc.culprit}
			if got := reason(r); got != tc.want {
				t.Errorf("reason\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	ok := measurement{
		client: response{Body: 1 << 20},
		server: observation{Sendfile: 1<<20 - sniffLen, Logged: logged{Records: 1, HasSendfile: true, Sendfile: 1<<20 - sniffLen}},
	}
	for _, tc := range []struct {
		name   string
		change func(m *measurement)
		want   string
	}{
		{"consistent", func(*measurement) {}, ""},
		{"two records", func(m *measurement) { m.server.Logged.Records = 2 }, "fastpath's Logger wrote 2 records, want 1"},
		{"no sendfile size", func(m *measurement) { m.server.Logged.HasSendfile = false }, "fastpath's Logger recorded no sendfile size though it was served through Listener"},
		{"sendfile sizes differ", func(m *measurement) { m.server.Logged.Sendfile = 7 }, "fastpath's Logger recorded 7 sendfile bytes, the connection counted 1048064"},
		{"a copy reason for a kept body", func(m *measurement) {
			m.server.Logged.CopyReason, m.server.Logged.CopyWrapper = middleware.CopyReasonNoReadFrom, "*x.w from example.com/x"
		}, `fastpath's Logger recorded copy reason "no_readfrom" (wrapper "*x.w from example.com/x") for a body sendfile sent`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ok
			tc.change(&m)
			got := ""
			if err := m.check(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("check: %q, want %q", got, tc.want)
			}
		})
	}
}
