package middleware

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/felixge/httpsnoop"

	"github.com/fastpath-go/fastpath/internal/copynote"
)

// http1Writer is the method set of net/http's HTTP/1 ResponseWriter: the
// optional interfaces httpsnoop knows, except http.Pusher.
type http1Writer interface {
	http.ResponseWriter
	http.Flusher
	FlushError() error
	http.CloseNotifier //nolint:staticcheck // net/http still offers it; a wrapper must too
	http.Hijacker
	io.ReaderFrom
	io.StringWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	EnableFullDuplex() error
}

// wrap returns w wrapped so rec sees every status and body write, with
// exactly w's optional interfaces (io.ReaderFrom above all, so sendfile and
// splice still happen below it).
//
// net/http's HTTP/1 writer, the one nearly every request has, gets
// recordWriter: a wrapper that lives inside the record, so wrapping costs no
// allocation. httpsnoop.Wrap, which handles every other combination of
// interfaces, allocates about twenty objects per request (a closure per hook
// and per method value), a third of what all three middlewares allocate in
// total. Both report to the record through commit and wrote, and are held to
// the same behaviour by the same tests.
func (rec *record) wrap(w http.ResponseWriter) http.ResponseWriter {
	if h1, ok := w.(http1Writer); ok {
		if _, push := w.(http.Pusher); !push {
			rec.w = recordWriter{rec: rec, w: h1}
			return &rec.w
		}
	}
	return httpsnoop.Wrap(w, rec.hooks())
}

// recordWriter is the record's wrapper of an http1Writer.
type recordWriter struct {
	rec *record
	w   http1Writer
}

var (
	_ http1Writer  = (*recordWriter)(nil)
	_ copynote.Own = (*recordWriter)(nil)
)

func (rw *recordWriter) Header() http.Header { return rw.w.Header() }

func (rw *recordWriter) WriteHeader(code int) {
	rw.w.WriteHeader(code)
	rw.rec.commit(code)
}

func (rw *recordWriter) Write(p []byte) (int, error) {
	n, err := rw.w.Write(p)
	rw.rec.wrote(int64(n), err)
	return n, err
}

func (rw *recordWriter) WriteString(s string) (int, error) {
	n, err := rw.w.WriteString(s)
	rw.rec.wrote(int64(n), err)
	return n, err
}

// ReadFrom hands src to net/http unchanged, so a file or a socket still
// reaches sendfile or splice.
func (rw *recordWriter) ReadFrom(src io.Reader) (int64, error) {
	return rw.rec.readFrom(src, rw.w.ReadFrom)
}

func (rw *recordWriter) Flush() {
	rw.w.Flush()
	rw.rec.commit(http.StatusOK)
}

func (rw *recordWriter) FlushError() error {
	err := rw.w.FlushError()
	rw.rec.commit(http.StatusOK)
	return err
}

func (rw *recordWriter) CloseNotify() <-chan bool { return rw.w.CloseNotify() }

func (rw *recordWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := rw.w.Hijack()
	if err == nil {
		rw.rec.hijacked = true
	}
	return c, brw, err
}

func (rw *recordWriter) SetReadDeadline(t time.Time) error  { return rw.w.SetReadDeadline(t) }
func (rw *recordWriter) SetWriteDeadline(t time.Time) error { return rw.w.SetWriteDeadline(t) }
func (rw *recordWriter) EnableFullDuplex() error            { return rw.w.EnableFullDuplex() }

// Unwrap returns the writer wrapped, for http.ResponseController and for
// code that looks below wrappers.
func (rw *recordWriter) Unwrap() http.ResponseWriter { return rw.w }

// FastpathRecordWriter marks the writer as the record's own, for
// fastpath's handlers (copynote.Own).
func (rw *recordWriter) FastpathRecordWriter() {}

// hooks are the httpsnoop hooks of every writer that is not an http1Writer:
// recordWriter's methods, as closures.
func (rec *record) hooks() httpsnoop.Hooks {
	return httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				next(code)
				rec.commit(code)
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(p []byte) (int, error) {
				n, err := next(p)
				rec.wrote(int64(n), err)
				return n, err
			}
		},
		WriteString: func(next httpsnoop.WriteStringFunc) httpsnoop.WriteStringFunc {
			return func(s string) (int, error) {
				n, err := next(s)
				rec.wrote(int64(n), err)
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				return rec.readFrom(src, next)
			}
		},
		Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
			return func() {
				next()
				rec.commit(http.StatusOK)
			}
		},
		Hijack: func(next httpsnoop.HijackFunc) httpsnoop.HijackFunc {
			return func() (net.Conn, *bufio.ReadWriter, error) {
				c, rw, err := next()
				if err == nil {
					rec.hijacked = true
				}
				return c, rw, err
			}
		},
	}
}

// commit records the final status: the first non-1xx WriteHeader, or the
// implicit 200 of a body write or Flush. 101 Switching Protocols is final, as
// net/http treats it.
func (rec *record) commit(code int) {
	if rec.headerSent || rec.hijacked || (code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols) {
		return
	}
	rec.code = code
	rec.headerSent = true
	rec.firstByte = now()
}

// wrote records a body write of n bytes that returned err.
func (rec *record) wrote(n int64, err error) {
	if rec.hijacked {
		return
	}
	rec.commit(http.StatusOK)
	if !rec.head { // net/http discards the body of a HEAD response
		rec.body += n
	}
	if err != nil && rec.writeErr == nil && !errors.Is(err, http.ErrBodyNotAllowed) {
		rec.writeErr = err
	}
}
