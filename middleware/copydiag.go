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

	// What a fastpath handler told of the writer it handed a file to: the
	// chain of writers from that one down to net/http's (Unwrap), whether
	// it had io.ReaderFrom, how many of the chain are above the record's
	// own writer, and the Content-Encoding the handler set itself. The
	// writers are only type-asserted and named afterwards, never called:
	// those above the record belong to handlers that have returned by then,
	// and some (gzhttp's) are reset for reuse.
	told    bool
	fileRF  bool
	chain   []http.ResponseWriter
	above   int // chain[:above] are between the handler and the record's own writer
	chainA  [4]http.ResponseWriter
	fileEnc string

	noted CopyReason // what a fastpath handler said (the proxy's reasons)
	found CopyReason // what the ReadFrom hook found when it saw bytes copied
	below bool       // the hook saw bytes copied below it, from a regular file

	done    bool // reason and wrapper are decided
	reason  CopyReason
	wrapper string
}

// FileBody implements copynote.Recorder: a fastpath handler is handing a
// file body to w, which may not take it to sendfile. It walks w's chain of
// writers now, while every one of them is live (see copyState).
func (rec *record) FileBody(w http.ResponseWriter, encoding string) {
	cp := &rec.cp
	if cp.told {
		return
	}
	cp.told, cp.fileEnc = true, encoding
	_, cp.fileRF = w.(io.ReaderFrom)
	cp.chain, cp.above = cp.chainA[:0], -1
	for range 64 { // a bound against a cycle of Unwraps
		if w == nil || isNetHTTP(w) {
			break
		}
		if w == rec.own && cp.above < 0 {
			cp.above = len(cp.chain)
		}
		cp.chain = append(cp.chain, w)
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	if cp.above < 0 {
		cp.above = len(cp.chain)
	}
}

// encodedByOther reports whether the response carries a Content-Encoding
// the fastpath handler that told of its file did not set: a middleware
// compressing on the fly. It looks once the handler has returned, since some
// compressors set the header on their first Write, and through the writer
// the record wrapped, which its caller still owns (the header map is the
// one every wrapper shares, or the compressor's own when it is outside).
func (rec *record) encodedByOther() bool {
	ce := rec.rw.Header().Get("Content-Encoding")
	return ce != "" && !strings.EqualFold(ce, rec.cp.fileEnc)
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
	if counted && rec.cp.found == "" && !rec.cp.below {
		if zc, _ := rec.zeroCopied(); n-(zc-zc0) > sniffLen {
			rec.cp.found = sourceReason(src, true)
			rec.cp.below = rec.cp.found == "" && isFile(src)
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
	if rec.hijacked || rec.head || rec.body == 0 || (cp.src == nil && !cp.told && cp.noted == "") {
		// No body, or one fastpath never saw offered for zero-copy: a
		// handler writing bytes it made, or one that copied a file through
		// Write below a wrapper that fastpath's handlers did not see.
		return "", ""
	}
	encoded := cp.told && rec.encodedByOther()
	switch {
	case rec.body <= sniffLen:
		cp.reason = CopyReasonSmallBody
	case cp.noted != "":
		cp.reason = cp.noted
	case cp.http2:
		cp.reason = CopyReasonClientHTTP2
	case cp.userTLS:
		cp.reason = CopyReasonClientTLS
	case cp.told && (encoded || !cp.fileRF || cp.src == nil):
		// The writer a fastpath handler gave the file to compresses, lacks
		// io.ReaderFrom, or did not pass the file down to the record's
		// ReadFrom: a wrapper between the two copied it. Without
		// io.ReaderFrom the culprit may be below the record's own writer,
		// which only mirrors what it wraps; with it, between.
		cp.reason = CopyReasonNoReadFrom
		if encoded {
			cp.reason = CopyReasonEncoded
		}
		chain := cp.chain
		if cp.fileRF {
			chain = chain[:cp.above]
		}
		cp.wrapper = blame(chain)
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
		} else if cp.below {
			// A regular file, with a length, handed to a ReadFrom that
			// copied it: a wrapper between fastpath and net/http that
			// keeps io.ReaderFrom but copies in it (or hides it below).
			if w := blame(chainOf(rec.rw)); w != "" {
				cp.reason, cp.wrapper = CopyReasonNoReadFrom, w
			}
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

// chainOf returns the writers from top down to net/http's own (not
// included), following Unwrap as http.ResponseController does. Every writer
// in it must still be live: the record calls it only on the writer its
// caller handed it.
func chainOf(top http.ResponseWriter) []http.ResponseWriter {
	var chain []http.ResponseWriter
	for w := top; w != nil && len(chain) < 64 && !isNetHTTP(w); { // 64: against a cycle of Unwraps
		chain = append(chain, w)
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return chain
}

// blame names the writer of chain (top first, each wrapping the next) to
// blame for a file copied on its way down. The culprit is the last writer
// without io.ReaderFrom above one that has it (a wrapper above it only
// mirrors what it wraps) or, when each has it, the one writer there is;
// with several, whose ReadFrom copies cannot be told, and blame names them
// all, top first, joined by " or ". httpsnoop's wrappers, which have what
// they wrap, are never named. "" for none. It only type-asserts the writers
// and names their types: it calls none of their methods.
func blame(chain []http.ResponseWriter) string {
	var (
		named   []http.ResponseWriter
		lacking http.ResponseWriter
	)
	for _, w := range chain {
		_, rf := w.(io.ReaderFrom)
		if rf && lacking != nil {
			break // lacking hides this one's ReadFrom
		}
		if isMirror(w) {
			continue // httpsnoop's: if its hooks copy, whose they are cannot be told
		}
		if !rf {
			lacking = w
		}
		named = append(named, w)
	}
	switch {
	case lacking != nil:
		return writerType(lacking)
	case len(named) == 0:
		return ""
	}
	names := make([]string, len(named))
	for i, w := range named {
		names[i] = writerType(w)
	}
	return strings.Join(names, " or ")
}

// isNetHTTP reports whether w is the ResponseWriter net/http's server gives
// a handler (HTTP/1's or HTTP/2's), not a wrapper of net/http's own such as
// http.TimeoutHandler's.
func isNetHTTP(w http.ResponseWriter) bool {
	t := reflect.TypeOf(w)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() == "net/http" && (t.Name() == "response" || t.Name() == "http2responseWriter")
}

// isMirror reports whether w is one of httpsnoop's wrappers, which have
// exactly the optional interfaces of what they wrap (fastpath's own, for
// writers other than net/http's HTTP/1 one, is one of them).
func isMirror(w http.ResponseWriter) bool { return pkgOf(w) == "github.com/felixge/httpsnoop" }

// pkgOf returns the package path of v's type, looking through pointers.
func pkgOf(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}

// writerType names v's Go type with its package path, as
// "*gzip.compressResponseWriter from github.com/example/gzip".
func writerType(v any) string {
	name := reflect.TypeOf(v).String()
	if pkg := pkgOf(v); pkg != "" {
		return name + " from " + pkg
	}
	return name
}
