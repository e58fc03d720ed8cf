package app

import (
	"io"
	"sync"
	"time"
)

// Log buffering: records wait in memory at most LogFlushInterval, and at
// most LogBufferSize bytes of them, before they are written out.
const (
	LogFlushInterval = 100 * time.Millisecond
	LogBufferSize    = 64 << 10
)

// LogWriter batches the records a slog handler writes (each one whole Write)
// into one write to w per batch, instead of one write(2) per request: a
// batch is written LogFlushInterval after its first record, as soon as it
// would pass LogBufferSize, and on Flush or Close. Records keep their order
// and are never split.
//
// What a crash loses: the records of at most the last LogFlushInterval (and
// LogBufferSize bytes), when the process dies without running Close (killed
// with SIGKILL, out of memory, a fatal runtime error). A shutdown on SIGINT
// or SIGTERM, or run returning an error, loses nothing: Close writes what
// is left.
type LogWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	timer  *time.Timer // writes the batch out; armed while buf holds records
	armed  bool
	closed bool
}

// NewLogWriter returns a LogWriter writing to w.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w, buf: make([]byte, 0, LogBufferSize)}
	l.timer = time.AfterFunc(time.Hour, func() { l.Flush() })
	l.timer.Stop()
	return l
}

// Write buffers p, one record. An error is that of writing an earlier batch
// out, which p was to follow; after Close, p is written at once.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.w.Write(p)
	}
	if len(l.buf)+len(p) > LogBufferSize {
		if err := l.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > LogBufferSize {
			return l.w.Write(p)
		}
	}
	l.buf = append(l.buf, p...)
	if !l.armed {
		l.armed = true
		l.timer.Reset(LogFlushInterval)
	}
	return len(p), nil
}

// Flush writes out the records buffered so far.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

// Close writes out what is buffered; later records are written at once.
// It does not close the underlying writer.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.flushLocked()
}

func (l *LogWriter) flushLocked() error {
	if l.armed {
		l.timer.Stop()
		l.armed = false
	}
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = l.buf[:0]
	return err
}
