package middleware

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// logCapture is a slog.Handler that keeps every record it is given; with
// leveled set, only those from minLevel up.
type logCapture struct {
	mu       sync.Mutex
	entries  []logEntry
	leveled  bool
	minLevel slog.Level
}

type logEntry struct {
	Level slog.Level
	Msg   string
	Keys  []string
	Attrs map[string]any
	Ctx   context.Context
}

func (c *logCapture) Enabled(_ context.Context, l slog.Level) bool {
	return !c.leveled || l >= c.minLevel
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

func (c *logCapture) Handle(ctx context.Context, r slog.Record) error {
	e := logEntry{Level: r.Level, Msg: r.Message, Attrs: map[string]any{}, Ctx: ctx}
	r.Attrs(func(a slog.Attr) bool {
		e.Keys = append(e.Keys, a.Key)
		e.Attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	c.mu.Lock()
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	return nil
}

func (c *logCapture) all() []logEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logEntry(nil), c.entries...)
}

// only returns the single record captured, failing the test otherwise.
func (c *logCapture) only(t *testing.T) logEntry {
	t.Helper()
	all := c.all()
	if len(all) != 1 {
		t.Fatalf("got %d log records, want 1: %+v", len(all), all)
	}
	return all[0]
}

func newCapture() (*logCapture, *slog.Logger) {
	c := &logCapture{}
	return c, slog.New(c)
}

// startServer serves h on a loopback HTTP/1.1 server, through Listener when
// zeroCopy is set. The server is closed (waiting for handlers) at cleanup, and
// by close().
func startServer(t *testing.T, h http.Handler, zeroCopy bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if zeroCopy {
		srv.Listener = Listener(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// writeTestFile writes size deterministic pseudo-random bytes to a file in a
// temporary directory and returns its path and contents.
func writeTestFile(t testing.TB, name string, size int) (string, []byte) {
	t.Helper()
	data := testutil.RandomBytes(size)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// serveFile returns a handler that serves the file at path with
// http.ServeContent, as a file server does.
func serveFile(t testing.TB, path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			http.Error(w, "open failed", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, filepath.Base(path), fi.ModTime(), f)
	}
}

// fakeClock makes now advance exactly one millisecond per call for the rest
// of the test, so durations can be checked exactly.
func fakeClock(t *testing.T) { fakeClockStep(t, time.Millisecond) }

// fakeClockStep is fakeClock with a clock that advances step per reading.
func fakeClockStep(t *testing.T, step time.Duration) {
	t.Helper()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var calls atomic.Int64
	prev := now
	now = func() time.Time { return base.Add(time.Duration(calls.Add(1)) * step) }
	t.Cleanup(func() { now = prev })
}

// do sends req with client and returns the response and the body bytes read.
func do(t *testing.T, client *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

const slogLevelError = slog.LevelError

func openFile(path string) (*os.File, error) { return os.Open(path) }

// chiGetHead is chi's GetHead middleware, which needs a complete routing
// context.
var chiGetHead = chimw.GetHead
