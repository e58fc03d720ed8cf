// Package copynote lets fastpath's handlers tell the request's record, kept
// by package middleware, about a body they could have sent zero-copy and
// could not. The handlers do not import middleware; the record is in the
// request context under Key, behind the Recorder interface.
//
// Nothing here runs on the fast path: a handler notes only when a body is
// copied.
package copynote

import (
	"context"
	"net/http"
)

// Key is the context key of the request's Recorder.
type Key struct{}

// Recorder is the request's record, as the handlers see it.
type Recorder interface {
	// FileCopied tells that a handler is handing a file body to w with
	// io.Copy and knows it will be copied: w lacks io.ReaderFrom, or it
	// carries a Content-Encoding other than encoding, the one the handler
	// set itself ("" for none), so a middleware compresses on the fly.
	FileCopied(w http.ResponseWriter, encoding string)
	// Copied tells that a handler copied a body it could have spliced, for
	// reason, one of middleware's CopyReason values.
	Copied(reason string)
}

// From returns the request's Recorder, or nil when no fastpath middleware
// records the request.
func From(ctx context.Context) Recorder {
	r, _ := ctx.Value(Key{}).(Recorder)
	return r
}
