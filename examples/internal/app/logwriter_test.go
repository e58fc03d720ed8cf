package app

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestLogWriter checks the batching on a fake clock: records wait until
// LogFlushInterval after the first of a batch, a batch that would pass
// LogBufferSize is written first, a record larger than the buffer goes out
// at once after what precedes it, and Close writes the rest and leaves
// later records unbuffered.
func TestLogWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu      sync.Mutex
			outBuf  bytes.Buffer
			writesN []int
		)
		w := NewLogWriter(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			writesN = append(writesN, len(p))
			return outBuf.Write(p)
		}))
		// The timer writes from its own goroutine.
		state := func() (string, []int) {
			mu.Lock()
			defer mu.Unlock()
			return outBuf.String(), slices.Clone(writesN)
		}
		w.Write([]byte("a\n"))
		time.Sleep(LogFlushInterval / 2)
		w.Write([]byte("b\n"))
		synctest.Wait()
		if out, _ := state(); out != "" {
			t.Fatalf("written before the interval: %q", out)
		}
		time.Sleep(LogFlushInterval / 2)
		synctest.Wait()
		if out, writes := state(); out != "a\nb\n" || len(writes) != 1 {
			t.Fatalf("after the interval: %q in writes %v, want one write of a and b", out, writes)
		}
		// Nothing buffered: no timer, no write.
		time.Sleep(10 * LogFlushInterval)
		synctest.Wait()
		if _, writes := state(); len(writes) != 1 {
			t.Fatalf("writes %v with nothing buffered", writes)
		}

		big := strings.Repeat("x", LogBufferSize-1) + "\n"
		w.Write([]byte("c\n"))
		w.Write([]byte(big)) // c + big would pass the buffer: c goes first
		if _, writes := state(); len(writes) != 2 || writes[1] != 2 {
			t.Fatalf("writes %v, want c written alone before the full record", writes)
		}
		w.Write([]byte(big + big)) // larger than the buffer: after big, at once
		if _, writes := state(); len(writes) != 4 || writes[2] != LogBufferSize || writes[3] != 2*LogBufferSize {
			t.Fatalf("writes %v, want big buffered, then written before big+big at once", writes)
		}
		w.Write([]byte("d\n"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("e\n"))
		out, writes := state()
		if want := "a\nb\nc\n" + big + big + big + "d\ne\n"; out != want {
			t.Errorf("output %d bytes, want %d in order", len(out), len(want))
		}
		if len(writes) != 6 || writes[4] != 2 || writes[5] != 2 {
			t.Errorf("writes %v, want d written on Close and e at once", writes)
		}
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
