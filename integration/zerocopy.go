package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
)

// sniffLen is how many body bytes net/http writes itself, with write(2),
// before it hands a file to sendfile(2) (see net/http's response.ReadFrom).
const sniffLen = 512

// Report is what CheckZeroCopy observed of one response.
type Report struct {
	// Status is the response status code.
	Status int
	// Proto is the protocol the response came over, such as "HTTP/1.1".
	Proto string
	// TLS reports whether the response came over TLS.
	TLS bool
	// BodyBytes is the number of body bytes the client received.
	BodyBytes int64
	// SendfileBytes is the number of response bytes the kernel sent with
	// sendfile(2), measured at the connection.
	SendfileBytes int64
	// MinSendfileBytes is the least SendfileBytes of a response kept on the
	// fast path: the body less the first 512 bytes, which net/http writes
	// itself. For a multipart/byteranges response it is the parts' bytes
	// less those net/http writes itself before its first flush (up to 512
	// of each part until one has 512), since the part headers always go by
	// write(2).
	MinSendfileBytes int64
	// Header is the response header.
	Header http.Header
	// CopyReason is why the body was copied rather than sent zero-copy, as
	// fastpath's middleware diagnosed it on the server (the kit serves the
	// handler under middleware.Logger to learn it), or "" when it was not
	// copied or the middleware could not tell (see middleware.CopyReason).
	CopyReason middleware.CopyReason
	// CopyWrapper is the Go type of the ResponseWriter wrapper to blame, with
	// its package, when the middleware could name one.
	CopyWrapper string
}

// ZeroCopyShare returns the fraction of the body sent by sendfile, from 0
// to 1; net/http writes the first 512 bytes itself, so a 4 KiB file kept on
// the fast path shows 0.875 (and a multi-range response less, since its
// part headers are written too).
func (r Report) ZeroCopyShare() float64 {
	if r.BodyBytes == 0 {
		return 0
	}
	return float64(r.SendfileBytes) / float64(r.BodyBytes)
}

// KeptFastPath reports whether every body byte that could go by sendfile
// did (see MinSendfileBytes).
func (r Report) KeptFastPath() bool {
	return r.MinSendfileBytes > 0 && r.SendfileBytes >= r.MinSendfileBytes
}

// notAFile reports whether the response is not a file body at all: a
// redirect, 304 Not Modified, 204 No Content or an error status.
func (r Report) notAFile() bool { return r.Status >= 300 || r.Status == http.StatusNoContent }

// redirect describes a redirect response by its target.
func (r Report) redirect() string {
	if loc := r.Header.Get("Location"); loc != "" {
		return fmt.Sprintf("a redirect to %q", loc)
	}
	return "a redirect with no Location"
}

// isRedirect reports whether the response is a redirect: a 3xx other than
// 304, which answers a conditional request (RFC 9110, section 15.4).
func (r Report) isRedirect() bool {
	return r.Status >= 300 && r.Status < 400 && r.Status != http.StatusNotModified
}

// Reason explains why a response did not go by sendfile, or returns "" when
// it did: it is "" exactly when KeptFastPath is true. It names the
// middleware's CopyReason and the wrapper to blame when the server-side
// diagnosis found them, and otherwise reasons from the response alone.
func (r Report) Reason() string {
	multi := strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges")
	switch {
	case r.Status == http.StatusNotModified:
		return "the response is 304 Not Modified: the client's copy is current, so no body was sent"
	case r.isRedirect():
		return fmt.Sprintf("the response is %d %s, %s, not a file", r.Status, http.StatusText(r.Status), r.redirect())
	case r.notAFile():
		return fmt.Sprintf("the response is %d %s, not a file", r.Status, http.StatusText(r.Status))
	case r.KeptFastPath():
		return ""
	case r.MinSendfileBytes <= 0:
		return fmt.Sprintf("%s: the body is %d bytes, and net/http writes up to %d itself before it hands a file to sendfile: not a loss, but nothing to prove", middleware.CopyReasonSmallBody, r.BodyBytes, sniffLen)
	case r.CopyReason != "":
		return string(r.CopyReason) + ": " + explainCopy(r.CopyReason, r.CopyWrapper, r.Header)
	case r.Proto != "HTTP/1.1" && r.Proto != "HTTP/1.0":
		return r.Proto + " frames the body itself and never uses sendfile"
	case r.TLS:
		return "TLS encrypts the body in user space and never uses sendfile"
	case r.Header.Get("Content-Encoding") != "" && r.Header.Get("Content-Length") == "":
		return "the body was compressed on the fly (Content-Encoding: " + r.Header.Get("Content-Encoding") + ")"
	case r.Header.Get("Content-Length") == "":
		return "the response had no Content-Length, so it was chunked"
	case multi && r.SendfileBytes == 0:
		return "the multi-range response was copied through user space: http.ServeContent sends those through an io.Pipe (handlers.ServeContent and handlers.FileServer do not), or a ResponseWriter wrapper hides io.ReaderFrom"
	case multi:
		return "some parts of the multi-range response were copied through user space"
	default:
		return "a ResponseWriter wrapper between the handler and net/http hides io.ReaderFrom"
	}
}

// explainCopy says in words what a CopyReason means for this response.
func explainCopy(reason middleware.CopyReason, wrapper string, h http.Header) string {
	blame := func(what string) string {
		if wrapper == "" {
			return what
		}
		return what + ": " + wrapper
	}
	switch reason {
	case middleware.CopyReasonNoReadFrom:
		return blame("a ResponseWriter wrapper hides io.ReaderFrom")
	case middleware.CopyReasonEncoded:
		return blame("a middleware compresses the body on the fly (Content-Encoding: " + h.Get("Content-Encoding") + ")")
	case middleware.CopyReasonChunked:
		return "the response had no Content-Length, so it was chunked; set one (handlers.ServeContent does)"
	case middleware.CopyReasonClientTLS:
		return "TLS encrypts the body in user space and never uses sendfile"
	case middleware.CopyReasonClientHTTP2:
		return "HTTP/2 frames the body itself and never uses sendfile"
	case middleware.CopyReasonNotFile:
		return "the body is not an *os.File (an embed.FS or fs.FS file, a buffer); sendfile sends only files on disk"
	case middleware.CopyReasonNotRegularFile:
		return "the body is an *os.File that is not a regular file"
	case middleware.CopyReasonMultiRange:
		return "the multi-range response was copied through user space: http.ServeContent sends those through an io.Pipe (handlers.ServeContent and handlers.FileServer do not)"
	default:
		return "see middleware.CopyReason"
	}
}

// Option configures CheckZeroCopy.
type Option func(*options)

type options struct {
	tls   bool
	http2 bool
}

// WithTLS serves the handler over TLS (which never uses sendfile), with
// HTTP/2 when http2 is set.
func WithTLS(http2 bool) Option {
	return func(o *options) { o.tls, o.http2 = true, http2 }
}

// CheckZeroCopy serves h on a loopback httptest.Server whose connections
// count the bytes sendfile(2) sent (middleware.Listener's), sends it req (only
// req's method, path, query, header, Host and body are used) with the server's
// own client, which follows redirects as any http.Client does, reads the whole
// response, and reports what it saw. It returns
// an error when the request fails or when the body did not go by sendfile;
// the Report is filled in either way.
//
// Use it in your own tests to prove that your middleware stack keeps file
// downloads on the fast path. The body must be larger than 512 bytes, since
// net/http writes the first 512 itself; a multipart/byteranges response is
// judged by its parts' bytes, since its part headers always go by write(2).
// A response that is not a file body is reported as what it is: a redirect
// the client did not follow (a 3xx), 304 Not Modified, 204 No Content, or an
// error status (4xx, 5xx).
func CheckZeroCopy(h http.Handler, req *http.Request, opts ...Option) (Report, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if req == nil || req.URL == nil {
		return Report{}, errors.New("integration: CheckZeroCopy needs a request with a URL")
	}
	// The kit's own Logger outermost learns the middleware's diagnosis; a
	// fastpath middleware in h shares its record, and a wrapper of h's shows
	// up below it as it would below net/http.
	var diag copyDiagnosis
	srv := httptest.NewUnstartedServer(middleware.Logger(slog.New(&diag))(h))
	conns := &connListener{Listener: middleware.Listener(srv.Listener)}
	srv.Listener = conns
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	if o.tls {
		srv.EnableHTTP2 = o.http2
		srv.StartTLS() // TLS above the counting connections, as in production
	} else {
		srv.Start()
	}
	defer srv.Close()
	client := srv.Client()
	client.Timeout = time.Minute

	u := *req.URL
	base, _ := url.Parse(srv.URL)
	u.Scheme, u.Host = base.Scheme, base.Host
	out, err := http.NewRequestWithContext(req.Context(), req.Method, u.String(), req.Body)
	if err != nil {
		return Report{}, fmt.Errorf("integration: %w", err)
	}
	out.Header = req.Header.Clone()
	if req.Host != "" {
		out.Host = req.Host
	}
	resp, err := client.Do(out)
	if err != nil {
		return Report{}, fmt.Errorf("integration: request: %w", err)
	}
	body := &testutil.CountingReader{R: resp.Body}
	minSendfile, err := readBody(body, resp.Header.Get("Content-Type"))
	resp.Body.Close()
	rep := Report{Status: resp.StatusCode, Proto: resp.Proto, TLS: resp.TLS != nil, BodyBytes: body.N, Header: resp.Header, MinSendfileBytes: minSendfile}
	if err != nil {
		return rep, fmt.Errorf("integration: reading the body: %w", err)
	}
	// The client can finish reading before the handler has returned from its
	// last sendfile; Close waits for every handler, so the count is complete.
	srv.Close()
	rep.SendfileBytes = conns.sendfile()
	rep.CopyReason, rep.CopyWrapper = diag.result()
	switch {
	case rep.Status == http.StatusNotModified:
		return rep, errors.New("integration: the handler answered 304 Not Modified: the request's If-None-Match or If-Modified-Since matched, so there was no body to send; drop those headers")
	case rep.isRedirect():
		return rep, fmt.Errorf("integration: the handler answered %d %s, %s, so there was no file to send; request the file at the redirect's target",
			rep.Status, http.StatusText(rep.Status), rep.redirect())
	case rep.notAFile():
		return rep, fmt.Errorf("integration: the handler answered %d %s (a %d-byte body), so there was no file to send; check the request's method and path against the handler's routes",
			rep.Status, http.StatusText(rep.Status), rep.BodyBytes)
	case rep.MinSendfileBytes <= 0:
		return rep, fmt.Errorf("integration: the body is %d bytes; net/http writes up to %d itself, so use a larger file", rep.BodyBytes, sniffLen)
	case !rep.KeptFastPath():
		return rep, fmt.Errorf("integration: sendfile sent %d of %d body bytes (%.0f%%): %s",
			rep.SendfileBytes, rep.BodyBytes, 100*rep.ZeroCopyShare(), rep.Reason())
	}
	return rep, nil
}

// readBody reads a whole response body and returns its MinSendfileBytes.
// A multipart/byteranges body is read part by part, to tell the parts'
// bytes from the framing.
func readBody(body *testutil.CountingReader, contentType string) (int64, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/byteranges" || params["boundary"] == "" {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return 0, err
		}
		return body.N - sniffLen, nil
	}
	// net/http copies up to 512 bytes of a ReadFrom source with write(2)
	// while the response header is unwritten, and writes the header once
	// one such copy has 512 bytes; every later byte can go by sendfile.
	var payload, written int64
	flushed := false
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, p)
		if err != nil {
			return 0, err
		}
		payload += n
		if !flushed {
			written += min(n, sniffLen)
			flushed = n >= sniffLen
		}
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return 0, err
	}
	return payload - written, nil
}

// AssertZeroCopy is CheckZeroCopy for tests: it fails t with the reason when
// the response did not go by sendfile, and returns the Report.
func AssertZeroCopy(t testing.TB, h http.Handler, req *http.Request, opts ...Option) Report {
	t.Helper()
	rep, err := CheckZeroCopy(h, req, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// connListener remembers the counting connections it accepts, to sum them
// once the server is closed.
type connListener struct {
	net.Listener // middleware.Listener's
	mu           sync.Mutex
	conns        []*zerocopy.Conn
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c.(*zerocopy.Conn))
		l.mu.Unlock()
	}
	return c, err
}

// sendfile sums what sendfile sent on every connection accepted.
func (l *connListener) sendfile() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, c := range l.conns {
		n += c.Sendfile()
	}
	return n
}

// copyDiagnosis is a slog.Handler that keeps the copy reason and wrapper of
// the last request record Logger hands it.
type copyDiagnosis struct {
	mu      sync.Mutex
	reason  middleware.CopyReason
	wrapper string
}

func (d *copyDiagnosis) Enabled(context.Context, slog.Level) bool { return true }
func (d *copyDiagnosis) WithAttrs([]slog.Attr) slog.Handler       { return d }
func (d *copyDiagnosis) WithGroup(string) slog.Handler            { return d }

func (d *copyDiagnosis) Handle(_ context.Context, r slog.Record) error {
	var reason, wrapper string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case middleware.CopyReasonKey:
			reason = a.Value.String()
		case middleware.CopyWrapperKey:
			wrapper = a.Value.String()
		}
		return true
	})
	d.mu.Lock()
	d.reason, d.wrapper = middleware.CopyReason(reason), wrapper
	d.mu.Unlock()
	return nil
}

func (d *copyDiagnosis) result() (middleware.CopyReason, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reason, d.wrapper
}
