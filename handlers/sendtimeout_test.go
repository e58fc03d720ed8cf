//go:build unix

package handlers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// sendTimeoutServer serves a directory holding a file of size bytes with
// WithSendTimeout(d), and reports on done each time a handler returns.
func sendTimeoutServer(t *testing.T, size int, d time.Duration) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	fs := FileServer(root, WithSendTimeout(d))
	done := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

// TestSendTimeoutCutsOffStalledReader checks that a client that stops
// reading mid-download is cut off, and that the handler returns.
func TestSendTimeoutCutsOffStalledReader(t *testing.T) {
	const size = 64 << 20
	srv, done := sendTimeoutServer(t, size, 300*time.Millisecond)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	// Stop reading. The handler must give up on its own; the bound here
	// only keeps a broken implementation from hanging the test.
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("handler still sending to a client that stopped reading")
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || 1<<20+n >= size {
		t.Errorf("client read the rest (%d bytes, err %v) after being cut off", n, err)
	}
}

// TestSendTimeoutSlowReaderCompletes checks that a slow client that keeps
// reading is not cut off, however long the download takes in all.
func TestSendTimeoutSlowReaderCompletes(t *testing.T) {
	const size = 16 << 20
	srv, _ := sendTimeoutServer(t, size, time.Second)
	dialer := &net.Dialer{Control: nil}
	conn, err := dialer.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(32 << 10)
	fmt.Fprintf(conn, "GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var got int64
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != size {
		t.Fatalf("slow reader got %d of %d bytes in %v", got, size, time.Since(start))
	}
}

// deadlineWriter records the write deadlines set on it.
type deadlineWriter struct {
	httptest.ResponseRecorder
	mu        sync.Mutex
	deadlines []time.Time
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadlines = append(w.deadlines, t)
	return nil
}

func (w *deadlineWriter) calls() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.deadlines...)
}

// TestWatchSend checks the watcher directly: a deadline d ahead at once,
// moved while the file's offset moves, left alone while it does not, and
// set d ahead one last time, for good, when watching stops.
func TestWatchSend(t *testing.T) {
	const d = 80 * time.Millisecond
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &deadlineWriter{}
	stop := watchSend(w, f, d)
	if got := w.calls(); len(got) != 1 || got[0].IsZero() {
		t.Fatalf("deadlines %v, want one set at once", got)
	}
	// Progress: the offset moves between checks.
	for i := range 4 {
		f.Seek(int64(i+1)*100, io.SeekStart)
		time.Sleep(d / 2)
	}
	moved := len(w.calls())
	if moved < 3 {
		t.Fatalf("%d deadlines while the offset moved, want it moved forward", moved)
	}
	// Stall: the offset stays put; at most the one check that sees the
	// last move may still extend it.
	time.Sleep(2 * d)
	if stalled := len(w.calls()); stalled > moved+1 {
		t.Fatalf("deadline moved %d more times while nothing was sent", stalled-moved)
	}
	stopped := time.Now()
	stop()
	after := w.calls()
	if last := after[len(after)-1]; last.Before(stopped.Add(d)) {
		t.Fatalf("last deadline %v, want %v ahead of the stop at %v", last, d, stopped)
	}
	f.Seek(1<<20, io.SeekStart)
	time.Sleep(d)
	if got := w.calls(); len(got) != len(after) {
		t.Fatalf("deadline set %d times after stop", len(got)-len(after))
	}
}

// TestSendTimeoutRecorder checks that a writer without deadlines is served.
func TestSendTimeoutRecorder(t *testing.T) {
	tree := newTestTree(t)
	w := httptest.NewRecorder()
	FileServer(tree.root, WithSendTimeout(time.Second)).ServeHTTP(w, request("GET", "/hello.txt"))
	if w.Code != 200 || w.Body.String() != "Hello, world!\n" {
		t.Errorf("got %d %q", w.Code, w.Body.String())
	}
}
