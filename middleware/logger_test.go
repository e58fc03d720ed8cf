package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// recordKeeper keeps the slog.Records it is given.
type recordKeeper struct{ recs []slog.Record }

func (k *recordKeeper) Enabled(context.Context, slog.Level) bool { return true }
func (k *recordKeeper) WithAttrs([]slog.Attr) slog.Handler       { return k }
func (k *recordKeeper) WithGroup(string) slog.Handler            { return k }
func (k *recordKeeper) Handle(_ context.Context, r slog.Record) error {
	k.recs = append(k.recs, r)
	return nil
}

// TestLoggerRecordSourceAndTime checks that Logger's records carry what
// slog.Logger.LogAttrs would give them: the pc of Logger's call site (its
// source, for handlers with AddSource) and the time of logging; and that
// records kept by a handler stay as they were after later requests.
func TestLoggerRecordSourceAndTime(t *testing.T) {
	k := &recordKeeper{}
	h := Logger(slog.New(k))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	before := time.Now()
	for _, p := range []string{"/a", "/b", "/c"} {
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("User-Agent", "ua"+p)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	after := time.Now()
	if len(k.recs) != 3 {
		t.Fatalf("got %d records, want 3", len(k.recs))
	}
	for i, r := range k.recs {
		if fn := r.Source().Function; !strings.HasSuffix(fn, "/middleware.(*logger).end") {
			t.Errorf("record %d: source function %q, want Logger's", i, fn)
		}
		if r.Time.Before(before) || r.Time.After(after) {
			t.Errorf("record %d: time %v outside [%v, %v]", i, r.Time, before, after)
		}
		want := map[string]string{"url.path": []string{"/a", "/b", "/c"}[i], "user_agent.original": "ua" + []string{"/a", "/b", "/c"}[i]}
		n := 0
		r.Attrs(func(a slog.Attr) bool {
			n++
			if w, ok := want[a.Key]; ok && a.Value.String() != w {
				t.Errorf("record %d: %s = %q, want %q", i, a.Key, a.Value.String(), w)
			}
			return true
		})
		if n != r.NumAttrs() || n < 6 {
			t.Errorf("record %d: %d attrs", i, n)
		}
	}
}
