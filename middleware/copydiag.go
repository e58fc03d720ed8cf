package middleware

import (
	"io"
	"io/fs"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
)

// sniffLen is how many body bytes net/http writes itself, with write(2),
// before it hands a source to the connection's ReadFrom (see net/http's
// response.ReadFrom): it sniffs a Content-Type from them.
const sniffLen = 512

// copyState is what the record keeps to tell why a body was copied (see
// "Why a body was copied" in the package documentation). Nothing in it costs
// the fast path more than a field store: the diagnosis runs once a copy is
// known, or once the request is done.
type copyState struct {
	userTLS bool // net/http served the request over crypto/tls
	http2   bool // the request came over HTTP/2

	src io.Reader // the first source handed to ReadFrom through the record's writer

	noRF        http.ResponseWriter // the writer a fastpath handler copied a file to
	noRFEncoded bool                // it had a Content-Encoding the handler did not set

	noted CopyReason // what a fastpath handler said (the proxy's reasons)
	found CopyReason // what the ReadFrom hook found when it saw bytes copied

	done    bool // reason and wrapper are decided
	reason  CopyReason
	wrapper string
}

// FileCopied implements copynote.Recorder: a fastpath handler is copying a
// file body to w, which lacks io.ReaderFrom or compresses on the fly.
func (rec *record) FileCopied(w http.ResponseWriter, encoding string) {
	if rec.cp.noRF != nil {
		return
	}
	rec.cp.noRF = w
	if ce := w.Header().Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, encoding) {
		rec.cp.noRFEncoded = true
	}
}

// Copied implements copynote.Recorder: a fastpath handler copied a body for
// reason. The first one said stands.
func (rec *record) Copied(reason string) {
	if rec.cp.noted == "" {
		rec.cp.noted = CopyReason(reason)
	}
}

// zeroCopied returns the bytes sendfile and splice have sent on the
// request's connection so far, and false without Listener.
func (rec *record) zeroCopied() (int64, bool) {
	if rec.conn == nil {
		return 0, false
	}
	return rec.conn.Sendfile() + rec.conn.Splice(), true
}

// readFrom runs a ReadFrom of src through next, for the record's writers: it
// counts the bytes, keeps the source for the diagnosis and, with Listener,
// looks at the source at once when the connection shows it was copied, while
// a file is still open to be looked at.
func (rec *record) readFrom(src io.Reader, next func(io.Reader) (int64, error)) (int64, error) {
	if rec.cp.src == nil {
		rec.cp.src = src
	}
	zc0, counted := rec.zeroCopied()
	n, err := next(src)
	rec.wrote(n, err)
	if counted && rec.cp.found == "" {
		if zc, _ := rec.zeroCopied(); n-(zc-zc0) > sniffLen {
			rec.cp.found = sourceReason(src, true)
		}
	}
	return n, err
}

// copyReason returns why the response body was copied and, for
// CopyReasonNoReadFrom and CopyReasonEncoded, the type of the writer to blame;
// "" when it was not, or when fastpath cannot know. It decides once, after the
// handler has returned.
func (rec *record) copyReason() (CopyReason, string) {
	cp := &rec.cp
	if cp.done {
		return cp.reason, cp.wrapper
	}
	cp.done = true
	if rec.hijacked || rec.head || rec.body == 0 || (cp.src == nil && cp.noRF == nil && cp.noted == "") {
		// No body, or one fastpath never saw offered for zero-copy: a
		// handler writing bytes it made, or one that copied a file through
		// Write below a wrapper that fastpath's handlers did not see.
		return "", ""
	}
	switch {
	case rec.body <= sniffLen:
		cp.reason = CopyReasonSmallBody
	case cp.noted != "":
		cp.reason = cp.noted
	case cp.http2:
		cp.reason = CopyReasonClientHTTP2
	case cp.userTLS:
		cp.reason = CopyReasonClientTLS
	case cp.noRF != nil:
		cp.reason = CopyReasonNoReadFrom
		if cp.noRFEncoded {
			cp.reason = CopyReasonEncoded
		}
		if h := hidingWriter(cp.noRF); h != nil {
			cp.wrapper = writerType(h)
		}
	case cp.found != "":
		cp.reason = cp.found
	default:
		// The source reached net/http: what it is, or its framing, may
		// rule sendfile out whatever the connection (with Listener that
		// was looked at when it happened).
		if r := sourceReason(cp.src, false); r != "" {
			cp.reason = r
		} else if rec.declared < 0 && isFile(cp.src) {
			cp.reason = CopyReasonChunked
		}
	}
	return cp.reason, cp.wrapper
}

// copiedLoss returns the body bytes that were copied though they could have
// gone zero-copy, for CopiedSizeMetric: the body less what sendfile and
// splice sent and less the bytes net/http always writes itself; 0 when the
// body was not copied or its reason is no loss.
func (rec *record) copiedLoss(reason CopyReason) int64 {
	if reason == "" || reason == CopyReasonSmallBody {
		return 0
	}
	var zc int64
	if rec.conn != nil {
		zc = rec.conn.Sendfile() - rec.sendfile0 + rec.conn.Splice() - rec.splice0
	}
	return max(0, rec.body-zc-sniffLen)
}

// sourceReason tells what rules sendfile out for src by its kind: not a file,
// or net/http's multi-range pipe; with copied set (the connection showed the
// bytes were copied), also a file that is not a regular one, which takes a
// stat(2). "" when its kind does not say.
func sourceReason(src io.Reader, copied bool) CopyReason {
	r := src
	if lr, ok := r.(*io.LimitedReader); ok {
		r = lr.R
	}
	switch f := r.(type) {
	case *zerocopy.Source:
		return "" // an upstream's body: the proxy notes why it copies one
	case *io.PipeReader:
		// http.ServeContent's multi-range body; anything else piped is
		// not a file either.
		return CopyReasonMultiRange
	case net.Conn:
		return "" // a socket: splice's business, which the proxy notes
	case syscall.Conn:
		if !copied {
			return ""
		}
		if st, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
			if fi, err := st.Stat(); err == nil && !fi.Mode().IsRegular() {
				return CopyReasonNotRegularFile
			}
		}
		return ""
	default:
		return CopyReasonNotFile
	}
}

// isFile reports whether src is a file sendfile could send from: what
// offers a descriptor and is not a socket, possibly inside an
// *io.LimitedReader (as internal/zerocopy tells them apart).
func isFile(src io.Reader) bool {
	if lr, ok := src.(*io.LimitedReader); ok {
		src = lr.R
	}
	_, fd := src.(syscall.Conn)
	_, socket := src.(net.Conn)
	return fd && !socket
}

// hidingWriter returns the writer that hides io.ReaderFrom below w: walking
// Unwrap as http.ResponseController does, the last writer without
// io.ReaderFrom before one that has it (a wrapper above the culprit only
// mirrors what it wraps), or the last one the walk reaches.
func hidingWriter(w http.ResponseWriter) http.ResponseWriter {
	var last http.ResponseWriter
	for range 64 { // a bound against a cycle of Unwraps
		if w == nil {
			break
		}
		if _, ok := w.(io.ReaderFrom); ok {
			break
		}
		last = w
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return last
}

// writerType names v's Go type with its package path, as
// "*gzip.compressResponseWriter from github.com/example/gzip".
func writerType(v any) string {
	t := reflect.TypeOf(v)
	name := t.String()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if pkg := t.PkgPath(); pkg != "" {
		return name + " from " + pkg
	}
	return name
}
