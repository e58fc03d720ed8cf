package middleware

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeH1 has the method set of net/http's HTTP/1 ResponseWriter, recording
// what reaches it.
type fakeH1 struct {
	h        http.Header
	code     int
	body     strings.Builder
	readFrom int
	flushes  int
	hijacked bool
}

func (f *fakeH1) Header() http.Header { return f.h }
func (f *fakeH1) WriteHeader(code int) {
	if f.code == 0 {
		f.code = code
	}
}
func (f *fakeH1) Write(p []byte) (int, error)       { return f.body.Write(p) }
func (f *fakeH1) WriteString(s string) (int, error) { return f.body.WriteString(s) }
func (f *fakeH1) ReadFrom(r io.Reader) (int64, error) {
	f.readFrom++
	return io.Copy(&f.body, r)
}
func (f *fakeH1) Flush()                   { f.flushes++ }
func (f *fakeH1) FlushError() error        { f.flushes++; return nil }
func (f *fakeH1) CloseNotify() <-chan bool { return nil }
func (f *fakeH1) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	f.hijacked = true
	return nil, nil, nil
}
func (f *fakeH1) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeH1) SetWriteDeadline(time.Time) error { return nil }
func (f *fakeH1) EnableFullDuplex() error          { return nil }

// fakeH1Push adds http.Pusher, which sends wrap to httpsnoop.
type fakeH1Push struct{ *fakeH1 }

func (fakeH1Push) Push(string, *http.PushOptions) error { return nil }

// TestWrappersAgree runs the same writes through recordWriter and through
// httpsnoop.Wrap and checks that the records and what reached the writer
// are the same.
func TestWrappersAgree(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
	}{
		{"Write", func(w http.ResponseWriter) { w.Write([]byte("hello")) }},
		{"WriteString", func(w http.ResponseWriter) { io.WriteString(w, "hello, world") }},
		{"ReadFrom", func(w http.ResponseWriter) { io.Copy(w, strings.NewReader(strings.Repeat("x", 70000))) }},
		{"WriteHeader then body", func(w http.ResponseWriter) { w.WriteHeader(201); w.Write([]byte("made")) }},
		{"1xx then final", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(204) }},
		{"Flush first", func(w http.ResponseWriter) { w.(http.Flusher).Flush(); w.Write([]byte("late")) }},
		{"FlushError first", func(w http.ResponseWriter) {
			http.NewResponseController(w).Flush()
			w.Write([]byte("late"))
		}},
		{"Hijack", func(w http.ResponseWriter) { w.(http.Hijacker).Hijack(); w.Write([]byte("ignored")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type outcome struct {
				code, flushes, readFrom int
				body                    string
				headerSent, hijacked    bool
				status                  int
				n                       int64
			}
			run := func(w http.ResponseWriter, f *fakeH1) (outcome, string) {
				rec := &record{}
				ww := rec.wrap(w)
				tt.write(ww)
				return outcome{f.code, f.flushes, f.readFrom, f.body.String(), rec.headerSent, rec.hijacked, rec.status(), rec.body}, typeName(ww)
			}
			f1 := &fakeH1{h: http.Header{}}
			own, ownType := run(f1, f1)
			f2 := &fakeH1{h: http.Header{}}
			snoop, snoopType := run(fakeH1Push{f2}, f2)
			if ownType != "*middleware.recordWriter" || snoopType == ownType {
				t.Fatalf("wrappers %s and %s, want recordWriter for the HTTP/1 set and httpsnoop otherwise", ownType, snoopType)
			}
			if own != snoop {
				t.Errorf("recordWriter: %+v\nhttpsnoop:    %+v", own, snoop)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *recordWriter:
		return "*middleware.recordWriter"
	default:
		return "other"
	}
}

// TestWrapAllocations checks that wrapping net/http's HTTP/1 writer
// allocates nothing beyond the record.
func TestWrapAllocations(t *testing.T) {
	f := &fakeH1{h: http.Header{}}
	allocs := testing.AllocsPerRun(100, func() {
		rec := &record{}
		rec.wrap(f).Write(nil)
	})
	if allocs != 1 {
		t.Errorf("%v allocations per wrap, want 1 (the record)", allocs)
	}
}
