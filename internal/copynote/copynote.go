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
	// FileBody tells that a handler is handing a file body to w with
	// io.Copy, and w is not the record's own writer (Own) or carries a
	// Content-Encoding other than encoding, the one the handler set itself
	// ("" for none). The record then learns whether the file reached it, or
	// was copied on the way: w lacks io.ReaderFrom, a middleware compresses
	// on the fly, or a wrapper keeps io.ReaderFrom and copies in it.
	FileBody(w http.ResponseWriter, encoding string)
	// Copied tells that a handler copied a body it could have spliced, for
	// reason, one of middleware's CopyReason values.
	Copied(reason string)
}

// Own is implemented by the ResponseWriter a fastpath middleware hands on: a
// body given to its ReadFrom reaches the record.
type Own interface {
	FastpathRecordWriter()
}

// From returns the request's Recorder, or nil when no fastpath middleware
// records the request.
func From(ctx context.Context) Recorder {
	r, _ := ctx.Value(Key{}).(Recorder)
	return r
}
