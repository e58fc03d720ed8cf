//go:build unix

package handlers

import (
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// watchSend keeps w's write deadline d ahead while the transfer of f makes
// progress, and returns a function that stops watching and leaves the
// deadline d ahead, so what net/http flushes after the handler returns (a
// small body, a multipart tail) is bounded too. net/http clears the write
// deadline after each request, so it does not outlive the response.
//
// Progress is read from f's offset: sendfile(2) advances it as the kernel
// takes bytes, and so do the read(2) calls of the copy fallback (TLS,
// HTTP/2). A check runs every d/4 on a timer; nothing runs per byte, and the
// sendfile path is untouched. When the client stops reading, the socket
// buffer stays full, the offset stops moving, the deadline passes, and the
// pending write fails, which ends the handler.
func watchSend(w http.ResponseWriter, f *os.File, d time.Duration) (stop func()) {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(d)); err != nil {
		return func() {} // this writer takes no deadlines
	}
	var (
		mu       sync.Mutex
		stopped  bool
		last     int64 = -1
		t        *time.Timer
		interval = max(d/4, time.Millisecond)
	)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		// Seek(0, SeekCurrent) only reads the offset; on Unix it takes none
		// of the locks the handler's sendfile or read holds.
		if off, err := f.Seek(0, io.SeekCurrent); err == nil && off != last {
			last = off
			rc.SetWriteDeadline(time.Now().Add(d))
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
		rc.SetWriteDeadline(time.Now().Add(d))
	}
}
