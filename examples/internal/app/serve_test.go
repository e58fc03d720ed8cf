package app

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTracker checks the bookkeeping behind /debug/idle and the shutdown
// line: waitIdle answers at once with no connection, waits while one is
// open and answers when the last closes or is hijacked; a connection closed
// before any request is told apart; requests are counted in and out.
func TestTracker(t *testing.T) {
	tr := newTracker()
	if open, err := tr.waitIdle(context.Background()); open != 0 || err != nil {
		t.Fatalf("no connection: waitIdle = %d, %v", open, err)
	}
	a, _ := net.Pipe()
	b, _ := net.Pipe()
	ctxA := tr.connContext(context.Background(), a)
	tr.connContext(context.Background(), b)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if open, err := tr.waitIdle(canceled); open != 2 || err == nil {
		t.Fatalf("two open: waitIdle = %d, %v; want 2 and the context's error", open, err)
	}

	r := httptest.NewRequest("GET", "/", nil).WithContext(ctxA)
	done := tr.start(r)
	if tr.inFlight.Load() != 1 || tr.finished.Load() != 0 {
		t.Fatalf("in flight %d, finished %d; want 1, 0", tr.inFlight.Load(), tr.finished.Load())
	}
	done()
	if tr.inFlight.Load() != 0 || tr.finished.Load() != 1 {
		t.Fatalf("in flight %d, finished %d; want 0, 1", tr.inFlight.Load(), tr.finished.Load())
	}

	idle := make(chan error, 1)
	go func() { _, err := tr.waitIdle(context.Background()); idle <- err }()
	tests := []struct {
		name     string
		c        net.Conn
		st       http.ConnState
		unserved bool
	}{
		{name: "served connection goes idle", c: a, st: http.StateIdle},
		{name: "served connection closes", c: a, st: http.StateClosed},
		{name: "closed twice", c: a, st: http.StateClosed},
		{name: "unserved connection closes", c: b, st: http.StateClosed, unserved: true},
	}
	for _, tt := range tests {
		if got := tt.unserved; tr.connState(tt.c, tt.st) != got {
			t.Errorf("%s: unserved = %v, want %v", tt.name, !got, got)
		}
	}
	if err := <-idle; err != nil {
		t.Fatalf("waitIdle after the last close: %v", err)
	}

	c, _ := net.Pipe()
	tr.connContext(context.Background(), c)
	if tr.connState(c, http.StateHijacked) {
		t.Error("a hijacked connection counted as closed before a request")
	}
	if open, err := tr.waitIdle(context.Background()); open != 0 || err != nil {
		t.Fatalf("after a hijack: waitIdle = %d, %v", open, err)
	}
}
