package middleware

import (
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
)

// ErrorType is the error.type recorded for a request, the same in logs,
// metrics and spans. It takes exactly these values:
//
//   - "", the zero ErrorType: the response completed, with a status below 500;
//   - one of the ErrorType constants below: the response was aborted (see
//     "Status, aborts, hijacks and panics" in the package documentation);
//   - the decimal form of the status code ("500", "503") of a response that
//     completed with a status of 500 or more, as the OpenTelemetry semantic
//     conventions ask of a server error.
type ErrorType string

// The ErrorType values of a response that did not complete.
const (
	// ErrorTypeClientAborted means the client went away, or reset the connection,
	// before it had the whole response (a browser cancelling a download to
	// seek, say). Normal traffic: logged at Info by default, and the span
	// status is left unset.
	ErrorTypeClientAborted ErrorType = "client_aborted"
	// ErrorTypeSendTimeout means a write missed its deadline, such as the one
	// handlers.WithSendTimeout keeps ahead of a download that progresses, or
	// http.Server.WriteTimeout. The server cut off a client that stopped
	// reading. Logged at Warn by default.
	ErrorTypeSendTimeout ErrorType = "send_timeout"
	// ErrorTypeWriteError means a write failed for another reason (the server
	// closed the connection at shutdown, say).
	ErrorTypeWriteError ErrorType = "write_error"
	// ErrorTypeShortBody means the handler returned without writing the whole
	// body its Content-Length declared (a file truncated while it was sent,
	// an upstream that died mid-body), so the client saw the response cut.
	ErrorTypeShortBody ErrorType = "short_body"
	// ErrorTypeHandlerAborted means the handler aborted the response on purpose
	// with panic(http.ErrAbortHandler), as httputil.ReverseProxy does when
	// its upstream fails mid-body, or with runtime.Goexit.
	ErrorTypeHandlerAborted ErrorType = "handler_aborted"
	// ErrorTypePanic means the handler panicked.
	ErrorTypePanic ErrorType = "panic"
)

// errorType returns the request's ErrorType. The order matters where
// several causes meet: a deadline or a connection the server closed names
// its cause exactly, a client that left explains the failures that follow,
// and a deliberate abort (httputil.ReverseProxy's, when its upstream fails)
// or a short body is what remains.
func (rec *record) errorType() ErrorType {
	switch {
	case rec.panicked && !rec.abortPanic():
		return ErrorTypePanic
	case rec.writeErr != nil && errors.Is(rec.writeErr, os.ErrDeadlineExceeded):
		return ErrorTypeSendTimeout
	case rec.writeErr != nil && errors.Is(rec.writeErr, net.ErrClosed):
		// The server closed the connection (at shutdown, say), which
		// also cancels the request context: not the client's doing.
		return ErrorTypeWriteError
	case rec.clientGone || (rec.writeErr != nil && peerGone(rec.writeErr)):
		return ErrorTypeClientAborted
	case rec.writeErr != nil:
		return ErrorTypeWriteError
	case rec.abortPanic():
		return ErrorTypeHandlerAborted
	case rec.short():
		return ErrorTypeShortBody
	}
	if s := rec.status(); s >= 500 {
		return ErrorType(statusText(s))
	}
	return ""
}

// serverFault reports whether errType is the server's concern rather than
// the client's: everything but a completed response and a client that left.
func serverFault(errType ErrorType) bool {
	return errType != "" && errType != ErrorTypeClientAborted
}

// peerGone reports a write error that means the client closed or reset the
// connection, or the network lost it.
func peerGone(err error) bool {
	for _, e := range [...]error{syscall.EPIPE, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// abortPanic reports a deliberate abort rather than a bug.
func (rec *record) abortPanic() bool {
	if !rec.panicked {
		return false
	}
	if rec.panicVal == nil {
		return true // runtime.Goexit
	}
	err, ok := rec.panicVal.(error)
	return ok && errors.Is(err, http.ErrAbortHandler)
}

// complete reports whether the handler wrote the whole body it declared with
// Content-Length. Such a response can reach the client before the handler
// returns (sendfile flushes it), and clients such as curl close the
// connection at once, canceling the request context: that is not an abort.
func (rec *record) complete() bool {
	return rec.declared >= 0 && rec.body >= rec.declared && !rec.head
}

// short reports a body that ended before the Content-Length it declared: a
// file truncated while it was sent, say. net/http then closes the
// connection, and the client sees the response cut off.
func (rec *record) short() bool {
	if rec.declared < 0 || rec.head || rec.hijacked || rec.body >= rec.declared {
		return false
	}
	s := rec.status()
	return s >= 200 && s != http.StatusNoContent && s != http.StatusNotModified
}
