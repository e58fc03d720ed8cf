package handlers

import (
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// watchSend is WithSendTimeout for one response (its documentation says what
// the client sees): it keeps w's write deadline d ahead for as long as the
// measure of the client's progress moves, and returns a function that stops
// watching and leaves the deadline d ahead, so what net/http flushes after
// the handler returns is bounded too. net/http clears the write deadline
// after each request, so it does not outlive the response.
//
// The measure is connProgress's when the connection can be measured, else
// the offset of f, which sendfile(2) and the copy fallback advance as the
// kernel takes bytes. Nothing runs per byte, so the sendfile path is
// untouched: startWatch checks every d/4 on a timer. A whole file of at most
// smallBody bytes (size, asked for without Range) is not watched: it gets
// one deadline d ahead.
func watchSend(w http.ResponseWriter, r *http.Request, f *os.File, size int64, d time.Duration) (stop func()) {
	if size <= smallBody && len(r.Header["Range"]) == 0 {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		return func() {}
	}
	progress := connProgress(r)
	if progress == nil {
		progress = func() (int64, bool) {
			// Seek(0, SeekCurrent) only reads the offset; it takes none of
			// the locks the handler's sendfile or read holds.
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
