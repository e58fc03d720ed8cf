//go:build unix

package handlers

import (
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"
)

// watchSend keeps w's write deadline d ahead for as long as the client takes
// the response's bytes, and returns a function that stops watching and
// leaves the deadline d ahead, so what net/http flushes after the handler
// returns (a small body, a multipart tail) is bounded too. net/http clears
// the write deadline after each request, so it does not outlive the
// response.
//
// Progress is measured at the client when the connection can be measured
// (see connProgress): the bytes the peer's TCP has acknowledged, which grow
// whenever the reader makes room in its receive window, at any rate. Where
// it cannot (no middleware.Listener, linux/386), progress is, on Linux, the
// file's offset, which sendfile(2) and the copy fallback
// advance as the kernel takes bytes; that moves only when the send buffer
// has drained by about a third, so there a reader slower than (send buffer
// / 3) / d looks stalled. Either way nothing runs per byte and the sendfile
// path is untouched: a check runs every d/4 on a timer.
//
// When the client stops reading, the measure stops moving, the deadline
// passes within 1.25 d of the last progress, and the pending write fails
// with an error that satisfies errors.Is(err, os.ErrDeadlineExceeded),
// which ends the handler.
//
// On Linux, a whole file of at most smallBody bytes (size, asked for
// without Range) is not watched: it gets one deadline d ahead, which also
// bounds what net/http flushes after the handler.
func watchSend(w http.ResponseWriter, r *http.Request, f *os.File, size int64, d time.Duration) (stop func()) {
	if runtime.GOOS == "linux" && size <= smallBody && len(r.Header["Range"]) == 0 {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		return func() {}
	}
	progress := connProgress(r)
	if progress == nil {
		if runtime.GOOS != "linux" {
			// Go's sendfile on the BSDs, macOS and Solaris passes an
			// explicit offset and moves the file's own only when the whole
			// call returns, so the offset would not move during a body:
			// nothing to watch, and a fixed deadline would cut off long
			// downloads.
			return func() {}
		}
		progress = func() (int64, bool) {
			// Seek(0, SeekCurrent) only reads the offset; on Unix it takes
			// none of the locks the handler's sendfile or read holds.
			off, err := f.Seek(0, io.SeekCurrent)
			return off, err == nil
		}
	}
	return startWatch(http.NewResponseController(w).SetWriteDeadline, progress, d)
}

// smallBody is the largest whole file sent under one fixed deadline instead
// of a watched one. The headers and a body this small fit in a loopback or
// LAN connection's send buffer (16 KiB by default, net.ipv4.tcp_wmem), so
// its writes hardly ever wait for the client; when they do, the client has
// d to take the rest, which cuts off only a reader slower than about
// smallBody per d (273 bytes/s at the examples' one minute). Watching would
// cost two getsockopt(2) calls, a timer and a second deadline per request,
// a tenth of a small file's whole cost.
const smallBody = 16 << 10

// startWatch sets the deadline now+d, then every d/4 reads progress and,
// when it has moved, sets the deadline now+d again. stop ends the checks and
// sets the deadline d ahead one last time. A setDeadline that fails at once
// means the writer takes no deadlines: nothing is watched then.
func startWatch(setDeadline func(time.Time) error, progress func() (int64, bool), d time.Duration) (stop func()) {
	if err := setDeadline(time.Now().Add(d)); err != nil {
		return func() {}
	}
	var (
		mu       sync.Mutex
		stopped  bool
		last, _  = progress()
		t        *time.Timer
		interval = max(d/4, time.Millisecond)
	)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if n, ok := progress(); ok && n != last {
			last = n
			setDeadline(time.Now().Add(d))
		}
		t.Reset(interval)
	}
	mu.Lock()
	t = time.AfterFunc(interval, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		setDeadline(time.Now().Add(d))
	}
}
