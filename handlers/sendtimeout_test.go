//go:build linux

package handlers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
)

// TestStartWatch checks the watcher's schedule on a fake clock: a deadline
// d ahead at once; while progress moves, a deadline that never falls
// behind; once it stops, a last deadline at most 1.25 d after the last
// move and none after; on stop, one more deadline d ahead and then nothing.
// This is where the 1.25 d bound is checked: the sleeps below advance the
// synctest bubble's clock, so none of them waits in real time and the
// schedule is exact however busy the machine.
func TestStartWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = 4 * time.Second
		var (
			progress  atomic.Int64
			mu        sync.Mutex
			deadlines []time.Time
		)
		set := func(at time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			deadlines = append(deadlines, at)
			return nil
		}
		current := func() (time.Time, int) {
			mu.Lock()
			defer mu.Unlock()
			return deadlines[len(deadlines)-1], len(deadlines)
		}
		start := time.Now()
		stop := startWatch(set, func() (int64, bool) { return progress.Load(), true }, d)
		if dl, n := current(); n != 1 || !dl.Equal(start.Add(d)) {
			t.Fatalf("first deadline %v (%d set), want %v", dl, n, start.Add(d))
		}
		// A steady reader: progress every 1.5 s for 30 s (well over d).
		time.Sleep(500 * time.Millisecond)
		for range 20 {
			progress.Add(1)
			time.Sleep(1500 * time.Millisecond)
			if dl, _ := current(); !dl.After(time.Now()) {
				t.Fatalf("at %v the deadline %v has passed while progressing", time.Since(start), dl.Sub(start))
			}
		}
		// A stall: no progress after lastMove.
		progress.Add(1)
		lastMove := time.Now()
		time.Sleep(3 * d)
		synctest.Wait()
		dl, n := current()
		if dl.After(lastMove.Add(d + d/4)) {
			t.Errorf("last deadline %v after the last move, want at most %v", dl.Sub(lastMove), d+d/4)
		}
		if !dl.After(lastMove) {
			t.Errorf("last deadline %v before the last move", dl.Sub(lastMove))
		}
		before := time.Now()
		stop()
		if dl, m := current(); m != n+1 || !dl.Equal(before.Add(d)) {
			t.Errorf("stop set %d deadlines, last %v, want one at %v", m-n, dl, before.Add(d))
		}
		progress.Add(1)
		time.Sleep(3 * d)
		synctest.Wait()
		if _, m := current(); m != n+1 {
			t.Errorf("%d deadlines set after stop", m-n-1)
		}
	})
}

// TestStartWatchNoDeadlines checks that a writer that takes no deadlines is
// not watched at all.
func TestStartWatchNoDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		stop := startWatch(func(time.Time) error { calls++; return http.ErrNotSupported },
			func() (int64, bool) { t.Error("progress read"); return 0, true }, time.Second)
		time.Sleep(5 * time.Second)
		stop()
		if calls != 1 {
			t.Errorf("SetWriteDeadline called %d times", calls)
		}
	})
}

// cutRecorder wraps a server's ResponseWriter: it records each write
// deadline the handler sets and the first write error, and keeps
// io.ReaderFrom, so the body still goes by sendfile(2).
type cutRecorder struct {
	http.ResponseWriter
	mu        sync.Mutex
	deadlines []time.Time
	setAt     []time.Time
	err       error
	errAt     time.Time
	acked     int64 // the client's progress when the handler returned
}

func (c *cutRecorder) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.setAt = append(c.setAt, time.Now())
	c.mu.Unlock()
	return http.NewResponseController(c.ResponseWriter).SetWriteDeadline(t)
}

func (c *cutRecorder) fail(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err, c.errAt = err, time.Now()
	}
}

func (c *cutRecorder) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.fail(err)
	return n, err
}

func (c *cutRecorder) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
	c.fail(err)
	return n, err
}

// lastDeadlineBefore returns the last deadline set before t.
func (c *cutRecorder) lastDeadlineBefore(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for i, at := range c.setAt {
		if at.Before(t) {
			last = c.deadlines[i]
		}
	}
	return last
}

var _ io.ReaderFrom = (*cutRecorder)(nil)

// slowServer serves a sparse file of size bytes with WithSendTimeout(d)
// through zerocopy.Listener, as a server using middleware.Listener does, so
// the send timeout measures the client. Each request's recorder, with the
// client's progress as the handler returned, is sent on the channel then.
func slowServer(t *testing.T, size int64, d time.Duration) (addr string, done <-chan *cutRecorder) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	fs := FileServer(root, WithSendTimeout(d))
	ch := make(chan *cutRecorder, 4)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &cutRecorder{ResponseWriter: w}
		defer func() { ch <- rec }()
		fs.ServeHTTP(rec, r)
		if p := connProgress(r); p != nil {
			rec.acked, _ = p()
		}
	}))
	ts.Listener = zerocopy.Listener{Listener: ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), ch
}

// dialSmallWindow connects with an 8 KiB receive buffer, so the client's
// TCP reopens its window in steps of a few KiB. On loopback with Linux's
// default buffers the steps are about 64 KiB (one loopback segment), which
// a 16 KiB/s reader frees only every four seconds; the send timeout must
// then be larger than that (see WithSendTimeout).
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receiveBuffer returns the receive buffer of c as the kernel keeps it
// (twice what SO_RCVBUF asked for, on Linux): the most data c's TCP holds,
// and so acknowledges, beyond what has been read from it.
func receiveBuffer(t *testing.T, c net.Conn) int64 {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var (
		n    int
		serr error
	)
	if err := rc.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return int64(n)
}

func getFile(t *testing.T, c net.Conn, rangeHeader string) *http.Response {
	t.Helper()
	req := "GET /f.bin HTTP/1.1\r\nHost: x\r\n"
	if rangeHeader != "" {
		req += "Range: " + rangeHeader + "\r\n"
	}
	if _, err := fmt.Fprint(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// handlerResult waits, with a bound that only keeps a broken
// implementation from hanging the test, for the handler to return.
func handlerResult(t *testing.T, done <-chan *cutRecorder) *cutRecorder {
	t.Helper()
	select {
	case rec := <-done:
		return rec
	case <-time.After(60 * time.Second):
		t.Fatal("the handler did not return")
		return nil
	}
}

// TestSendTimeoutSteadyReader checks, on a real loopback connection, that
// a reader taking a steady 16 KiB/s for longer than the send timeout is
// never cut off. The file is larger than the kernel's buffers, so the
// handler's sendfile(2) is blocked on the client throughout.
//
// Real time is the thing under test here (real acknowledgements from a real
// reader keeping the deadline ahead), so the reader runs on the real clock,
// but the verdict does not depend on the machine's speed. The watcher cuts
// a reader off only when three checks, d/4 apart, see no progress, and this
// reader moves the measure every few KiB (see dialSmallWindow), well within
// d/4 at its pace. A run in which the machine held the reader up for d/4 or
// more between two reads is not the steady reader this test is about: if
// it is cut off, the run is skipped with the figure, not judged.
func TestSendTimeoutSteadyReader(t *testing.T) {
	if connProgressUnavailable {
		t.Skip("this system does not measure the client")
	}
	t.Parallel()
	const (
		d    = 2 * time.Second
		size = 16 << 20
	)
	addr, done := slowServer(t, size, d)
	resp := getFile(t, dialSmallWindow(t, addr), "")
	// 16 KiB/s: 1 KiB every 62.5 ms, for 1.75 times the send timeout.
	var (
		got    int64
		maxGap time.Duration // the longest the reader went between reads
	)
	buf := make([]byte, 1<<10)
	tick := time.NewTicker(62500 * time.Microsecond)
	defer tick.Stop()
	last := time.Now()
	for end := last.Add(d * 7 / 4); time.Now().Before(end); {
		<-tick.C
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		maxGap = max(maxGap, time.Since(last))
		last = time.Now()
		if err != nil {
			if maxGap >= d/4 {
				t.Skipf("the machine held the reader up for %v (d is %v): not a steady reader; cut off after %d bytes: %v", maxGap, d, got, err)
			}
			t.Fatalf("cut off after %d bytes, reading at most %v apart: %v", got, maxGap, err)
		}
	}
	// Then take the rest at once: the response must be whole.
	n, err := io.Copy(io.Discard, resp.Body)
	got += n
	if err != nil || got != size {
		t.Fatalf("got %d of %d bytes: %v", got, size, err)
	}
	if rec := handlerResult(t, done); rec.err != nil {
		t.Errorf("handler's write failed: %v", rec.err)
	}
}

// TestSendTimeoutStoppedReader checks, on a real loopback connection, that
// a client that stops reading mid-body is cut off, by a write error that
// the middleware can tell apart as os.ErrDeadlineExceeded, for a whole file
// and for a multipart response.
//
// A real stall of a real socket is the thing under test, so it runs on the
// real clock, but no verdict depends on how fast the machine is. That the
// cut comes within 1.25 d of the measure's last move is TestStartWatch's
// verdict, on a fake clock; this test checks, in bytes, that the measure
// stops moving when the reader stops: when the handler gives up, the client
// has acknowledged no more than it read plus what its receive buffer holds.
// The times are logged, not judged.
func TestSendTimeoutStoppedReader(t *testing.T) {
	if connProgressUnavailable {
		t.Skip("this system does not measure the client")
	}
	t.Parallel()
	const (
		d    = 2 * time.Second
		size = 64 << 20
		read = 1 << 20 // body bytes the client reads before it stops
		// slack covers the response's and the parts' headers and what the
		// client's bufio.Reader took from the socket beyond the body read.
		slack = 8 << 10
	)
	for _, tt := range []struct{ name, rangeHeader string }{
		{"whole file", ""},
		{"multipart", "bytes=0-1023,2048-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, done := slowServer(t, size, d)
			c := dialSmallWindow(t, addr)
			resp := getFile(t, c, tt.rangeHeader)
			if _, err := io.CopyN(io.Discard, resp.Body, read); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			rec := handlerResult(t, done)
			rec.mu.Lock()
			err, errAt := rec.err, rec.errAt
			rec.mu.Unlock()
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("handler's write error %v, want one matching os.ErrDeadlineExceeded", err)
			}
			if limit := read + slack + receiveBuffer(t, c); rec.acked > limit {
				t.Errorf("the client acknowledged %d bytes by the cut, more than the %d it read and buffered: the measure moved after the reader stopped", rec.acked, limit)
			}
			t.Logf("stopped reader cut %v after it stopped (last deadline %v after); %d bytes acknowledged",
				errAt.Sub(stopped), rec.lastDeadlineBefore(errAt).Sub(stopped), rec.acked)
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil || read+n >= size {
				t.Errorf("client read the rest (%d bytes, err %v) after being cut off", n, err)
			}
		})
	}
}

// TestSendTimeoutWithoutListener checks the fallback: served without
// zerocopy.Listener, the connection cannot be measured, progress is the
// file's offset, and a client that stops reading is still cut off.
func TestSendTimeoutWithoutListener(t *testing.T) {
	t.Parallel()
	const size = 64 << 20
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fs := FileServer(root, WithSendTimeout(300*time.Millisecond))
	done := make(chan *cutRecorder, 1)
	measured := make(chan bool, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		measured <- connProgress(r) != nil
		rec := &cutRecorder{ResponseWriter: w}
		defer func() { done <- rec }()
		fs.ServeHTTP(rec, r)
	}))
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp := getFile(t, c, "")
	if <-measured {
		t.Error("connection measured without zerocopy.Listener")
	}
	// The client reads 1 MiB and stops. A machine busy enough to hold the
	// reader up for the whole (short) timeout gets it cut off sooner, which
	// is the same verdict: the error, not this read, is what is judged.
	io.CopyN(io.Discard, resp.Body, 1<<20)
	if rec := handlerResult(t, done); !errors.Is(rec.err, os.ErrDeadlineExceeded) {
		t.Errorf("handler's write error %v, want one matching os.ErrDeadlineExceeded", rec.err)
	}
}

// TestConnProgress checks the measure itself: through zerocopy.Listener, on
// Linux, it reads the bytes the peer acknowledged.
func TestConnProgress(t *testing.T) {
	if connProgressUnavailable {
		t.Skip("this system does not measure the client")
	}
	got := make(chan int64, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := connProgress(r)
		if p == nil {
			t.Error("no measure through zerocopy.Listener")
			got <- -1
			return
		}
		w.Write(make([]byte, 100000))
		http.NewResponseController(w).Flush()
		// The client closes the connection once it has read the body; its
		// FIN acknowledges everything, and the context ends when the server
		// reads that FIN.
		<-r.Context().Done()
		n, _ := p()
		got <- n
	}))
	ts.Listener = zerocopy.Listener{Listener: ts.Listener}
	ts.Start()
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL, nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, resp.Body, 100000)
	cancel()
	resp.Body.Close()
	if n := <-got; n < 100000 {
		t.Errorf("bytes acknowledged %d, want at least the 100000 the client read", n)
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

// deadlineWriter records the write deadlines set on it.
type deadlineWriter struct {
	http.ResponseWriter
	deadlines []time.Time
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.deadlines = append(w.deadlines, t)
	return nil
}

// TestWatchSendSmallFile checks that a whole file of at most
// smallBody bytes gets one deadline d ahead and no watch, and that a larger
// one, or a range of a small one, is watched (a deadline at once and one
// more on stop).
func TestWatchSendSmallFile(t *testing.T) {
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const d = time.Minute
	for _, tt := range []struct {
		name  string
		size  int64
		rng   string
		want  int // deadlines set, start to stop
		watch bool
	}{
		{"small", smallBody, "", 1, false},
		{"large", smallBody + 1, "", 2, true},
		{"small range", 4096, "bytes=0-9", 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
			r := httptest.NewRequest("GET", "/f", nil)
			if tt.rng != "" {
				r.Header.Set("Range", tt.rng)
			}
			before := time.Now()
			watchSend(w, r, f, tt.size, d)()
			if len(w.deadlines) != tt.want {
				t.Fatalf("%d deadlines set, want %d", len(w.deadlines), tt.want)
			}
			if dl := w.deadlines[0]; dl.Before(before.Add(d)) || dl.After(time.Now().Add(d)) {
				t.Errorf("deadline %v ahead, want %v", dl.Sub(before), d)
			}
		})
	}
}
