package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

// fileUpstream serves a directory with FileServer on loopback and returns
// its URL and the bytes of big.bin (1 MiB + 3) and small.txt.
func fileUpstream(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "big.bin", 1<<20+3)
	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte(strings.Repeat("text ", 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	srv := httptest.NewServer(handlers.FileServer(root))
	t.Cleanup(srv.Close)
	return srv.URL, data
}

func get(t *testing.T, e *proxyEnv, path string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// hider hides every optional interface of the ResponseWriter.
type hider struct{ http.ResponseWriter }

func TestReverseProxySplices(t *testing.T) {
	upstream, data := fileUpstream(t)
	type want struct {
		status   int
		body     []byte
		splice   int64
		path     string // fastpath.proxy.body
		reason   middleware.CopyReason
		encoding string
	}
	tests := []struct {
		name string
		path string
		hdr  []string
		o    proxyOpts
		want want
	}{
		{name: "full download", path: "/big.bin",
			want: want{status: 200, body: data, splice: int64(len(data)), path: "splice"}},
		{name: "range", path: "/big.bin", hdr: []string{"Range", "bytes=1000-700999"},
			want: want{status: 206, body: data[1000:701000], splice: 700000, path: "splice"}},
		{name: "suffix range", path: "/big.bin", hdr: []string{"Range", "bytes=-10"},
			want: want{status: 206, body: data[len(data)-10:], splice: 10, path: "splice"}},
		{name: "HEAD has no body", path: "/big.bin", hdr: []string{"X-Method", "HEAD"},
			want: want{status: 200, body: []byte{}, splice: 0}},
		{name: "not modified has no body", path: "/big.bin", hdr: []string{"If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"},
			want: want{status: 304, body: []byte{}, splice: 0}},
		{name: "a wrapper hides ReadFrom", path: "/big.bin",
			o: proxyOpts{inner: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(hider{w}, r) })
			}},
			want: want{status: 200, body: data, path: "copy", reason: middleware.CopyReasonNoReadFrom}},
		{name: "a middleware compresses", path: "/small.txt", hdr: []string{"Accept-Encoding", "gzip"},
			o:    proxyOpts{inner: chimw.Compress(5, "text/plain")},
			want: want{status: 200, body: nil, path: "copy", reason: middleware.CopyReasonEncoded, encoding: "gzip"}},
		{name: "a transport of the user's", path: "/big.bin",
			o:    proxyOpts{rp: func(rp *httputil.ReverseProxy) { rp.Transport = &http.Transport{} }},
			want: want{status: 200, body: data, path: "copy", reason: middleware.CopyReasonTransport}},
		{name: "ModifyResponse replaces the body", path: "/big.bin",
			o: proxyOpts{rp: func(rp *httputil.ReverseProxy) {
				rp.ModifyResponse = func(res *http.Response) error {
					res.Body = struct{ io.ReadCloser }{res.Body}
					return nil
				}
			}},
			want: want{status: 200, body: data, path: "copy", reason: middleware.CopyReasonBodyReplaced}},
		{name: "ModifyResponse sees the response", path: "/big.bin",
			o: proxyOpts{rp: func(rp *httputil.ReverseProxy) {
				rp.ModifyResponse = func(res *http.Response) error {
					res.Header.Set("X-Seen", "yes")
					return nil
				}
			}},
			want: want{status: 200, body: data, splice: int64(len(data)), path: "splice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newProxyEnv(t, upstream, tt.o)
			method := "GET"
			hdr := tt.hdr
			if len(hdr) == 2 && hdr[0] == "X-Method" {
				method, hdr = hdr[1], nil
			}
			req, _ := http.NewRequest(method, e.url+tt.path, nil)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			e.wait(1)
			if resp.StatusCode != tt.want.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want.status)
			}
			if tt.want.body != nil && !bytes.Equal(body, tt.want.body) {
				t.Fatalf("got %d bytes that differ from the %d expected", len(body), len(tt.want.body))
			}
			if got := resp.Header.Get("Content-Encoding"); got != tt.want.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.want.encoding)
			}
			if tt.want.encoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				if string(plain) != strings.Repeat("text ", 2000) {
					t.Errorf("decompressed body differs")
				}
			}
			rec, span := e.last()
			if got := num(rec, "http.response.body.size"); got != int64(len(body)) {
				t.Errorf("recorded body %d, client got %d", got, len(body))
			}
			if got := num(rec, "fastpath.response.splice.size"); got != tt.want.splice {
				t.Errorf("recorded splice %d, want %d", got, tt.want.splice)
			}
			if got := num(rec, "fastpath.response.sendfile.size"); got != 0 {
				t.Errorf("recorded sendfile %d, want 0: the proxy sends no file", got)
			}
			if _, ok := rec["error.type"]; ok {
				t.Errorf("error.type %v, want none", rec["error.type"])
			}
			if got := spanAttr(span, BodyKey); got != tt.want.path {
				t.Errorf("%s = %q, want %q", BodyKey, got, tt.want.path)
			}
			if got := copyReason(span); got != tt.want.reason {
				t.Errorf("%s = %q, want %q", CopyReasonKey, got, tt.want.reason)
			}
		})
	}
}

func TestReverseProxyHostileUpstream(t *testing.T) {
	body := strings.Repeat("abcdefghij", 10000) // 100000 bytes
	head := func(extra string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n" + extra + "\r\n"
	}
	tests := []struct {
		name string
		// first answers the first request on the first connection; the
		// upstream then answers "ok" with its connection number to
		// everything else, so a second request shows which connection it
		// was served on.
		first      string
		closeAfter bool // close the first connection after first
		reset      bool // and reset it rather than close it
		wantStatus int
		wantBody   string // "" with wantBodyLen
		wantBodyN  int
		wantCut    bool // the client sees the body cut
		wantErr    string
		wantUp     string // fastpath.proxy.upstream_error
		wantSplice int64
		wantReason middleware.CopyReason
		wantDials  int64 // after the second request
	}{
		{name: "whole body, connection reused", first: head("") + body,
			wantStatus: 200, wantBody: body, wantSplice: 100000, wantDials: 1},
		{name: "closes mid-body", first: head("") + body[:40000], closeAfter: true,
			wantStatus: 200, wantBodyN: 40000, wantCut: true, wantErr: "handler_aborted", wantUp: "closed", wantSplice: 40000, wantDials: 2},
		{name: "resets mid-body", first: head("") + body[:40000], closeAfter: true, reset: true,
			wantStatus: 200, wantBodyN: -1, wantCut: true, wantErr: "handler_aborted", wantUp: "reset", wantSplice: -1, wantDials: 2},
		{name: "more bytes than its Content-Length", first: head("") + body + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL",
			wantStatus: 200, wantBody: body, wantSplice: 100000, wantDials: 2},
		{name: "fewer bytes, then another response", first: head("") + body[:99990] + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL",
			wantStatus: 200, wantBody: body[:99990] + "HTTP/1.1 2", wantSplice: 100000, wantDials: 2},
		{name: "Connection: close", first: head("Connection: close\r\n") + body,
			wantStatus: 200, wantBody: body, wantSplice: 100000, wantDials: 2},
		{name: "HTTP/1.0 without keep-alive", first: strings.Replace(head(""), "HTTP/1.1", "HTTP/1.0", 1) + body,
			wantStatus: 200, wantBody: body, wantSplice: 100000, wantDials: 2},
		{name: "chunked", first: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: "hello world", wantReason: middleware.CopyReasonChunked, wantDials: 1},
		{name: "no length: until close", first: "HTTP/1.1 200 OK\r\n\r\n" + body, closeAfter: true,
			wantStatus: 200, wantBody: body, wantReason: middleware.CopyReasonUnknownLength, wantDials: 2},
		{name: "gzip passes through as sent", first: "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n" + gzipString("hello")[:20],
			wantStatus: 200, wantBody: gzipString("hello")[:20], wantSplice: 20, wantDials: 1},
		{name: "LF line endings", first: "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 5\n\nhello",
			wantStatus: 200, wantBody: "hello", wantSplice: 5, wantDials: 1},
		{name: "bad Content-Length", first: "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nhello", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
		{name: "conflicting Content-Lengths", first: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
		{name: "not HTTP", first: "SSH-2.0-OpenSSH_9.2\r\n\r\n", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
		{name: "header line without colon", first: "HTTP/1.1 200 OK\r\nthis is no header\r\n\r\n", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
		{name: "head larger than the limit", first: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 70000) + "\r\n\r\n", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
		{name: "closes before a response", first: "", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
		{name: "unasked 101", first: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\n\r\n", closeAfter: true,
			wantStatus: 502, wantBodyN: 0, wantErr: "502", wantDials: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := okUpstream(t, func(i, n int, c net.Conn) okStep {
				if i != 0 || n != 0 {
					return okDefault
				}
				c.Write([]byte(tt.first))
				if !tt.closeAfter {
					return okAnswered
				}
				if tt.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				return okHangUp
			})
			e := newProxyEnv(t, upstream, proxyOpts{tr: &Transport{MaxIdleConnsPerHost: 4, MaxResponseHeaderBytes: 64 << 10}})
			resp, got, err := get(t, e, "/x")
			e.wait(1)
			if resp == nil {
				t.Fatalf("request failed: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantCut != (err != nil) {
				t.Errorf("reading the body: %v; want cut: %v", err, tt.wantCut)
			}
			switch {
			case tt.wantBody != "" && string(got) != tt.wantBody:
				t.Errorf("client got %d bytes, want %d", len(got), len(tt.wantBody))
			case tt.wantBody == "" && tt.wantBodyN >= 0 && tt.wantStatus != 502 && len(got) != tt.wantBodyN:
				t.Errorf("client got %d bytes, want %d", len(got), tt.wantBodyN)
			}
			rec, span := e.last()
			if n := num(rec, "http.response.body.size"); tt.wantStatus != 502 && n != int64(len(got)) {
				t.Errorf("recorded body %d, client got %d", n, len(got))
			}
			if tt.wantSplice >= 0 {
				if n := num(rec, "fastpath.response.splice.size"); n != tt.wantSplice {
					t.Errorf("recorded splice %d, want %d", n, tt.wantSplice)
				}
			} else if n := num(rec, "fastpath.response.splice.size"); n != num(rec, "http.response.body.size") {
				t.Errorf("recorded splice %d of a body of %d", n, num(rec, "http.response.body.size"))
			}
			if got, _ := rec["error.type"].(string); got != tt.wantErr {
				t.Errorf("error.type %q, want %q", got, tt.wantErr)
			}
			if got := spanAttr(span, "error.type"); got != tt.wantErr {
				t.Errorf("span error.type %q, want %q", got, tt.wantErr)
			}
			if got := spanAttr(span, UpstreamErrorKey); got != tt.wantUp {
				t.Errorf("%s = %q, want %q", UpstreamErrorKey, got, tt.wantUp)
			}
			if tt.wantUp != "" {
				if span.Status.Code != codes.Error || !hasException(span) {
					t.Errorf("span status %v, events %v: want Error with the upstream's error recorded", span.Status, span.Events)
				}
			}
			if got := copyReason(span); got != tt.wantReason {
				t.Errorf("%s = %q, want %q", CopyReasonKey, got, tt.wantReason)
			}
			// The next request must get its own response, never bytes of
			// the first.
			resp2, got2, err := get(t, e, "/y")
			e.wait(1)
			if err != nil || resp2.StatusCode != 200 || !strings.HasPrefix(string(got2), "ok ") {
				t.Fatalf("second request: %v, %q", err, got2)
			}
			if d := e.dials.Load(); d != tt.wantDials {
				t.Errorf("%d dials, want %d", d, tt.wantDials)
			}
		})
	}
}

func hasException(s tracetest.SpanStub) bool {
	for _, ev := range s.Events {
		if ev.Name == "exception" {
			return true
		}
	}
	return false
}

func TestReverseProxyForwards1xx(t *testing.T) {
	upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
		br.ReadByte() // until the proxy closes
	})
	e := newProxyEnv(t, upstream, proxyOpts{})
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", e.url+"/", nil)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.wait(1)
	if want := []string{"103 </a.css>; rel=preload"}; fmt.Sprint(got) != fmt.Sprint(want) || string(body) != "hello" {
		t.Errorf("1xx %q and body %q, want %q and hello", got, body, want)
	}
	if rec, _ := e.last(); num(rec, "http.response.status_code") != 200 || num(rec, "fastpath.response.splice.size") != 5 {
		t.Errorf("record %v, want status 200 with 5 bytes spliced", rec)
	}
}

func TestReverseProxyUpgrade(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		io.Copy(c, brw)
	}))
	t.Cleanup(up.Close)
	e := newProxyEnv(t, up.URL, proxyOpts{})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	c.Close()
	e.wait(1)
	if _, span := e.last(); copyReason(span) != middleware.CopyReasonUpgrade {
		t.Errorf("copy reason %q, want %q", copyReason(span), middleware.CopyReasonUpgrade)
	}
}

// TestReverseProxyStreams checks that a slow upstream's body reaches the
// client as it arrives: the upstream sends its second half only once the
// client holds the first.
func TestReverseProxyStreams(t *testing.T) {
	half := strings.Repeat("s", 300000)
	clientHasHalf := make(chan struct{})
	upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", 2*len(half), half)
		select {
		case <-clientHasHalf:
		case <-time.After(time.Minute):
			return
		}
		io.WriteString(c, half)
		br.ReadByte()
	})
	e := newProxyEnv(t, upstream, proxyOpts{})
	resp, err := e.client.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 2*len(half))
	if _, err := io.ReadFull(resp.Body, buf[:len(half)]); err != nil {
		t.Fatal(err)
	}
	close(clientHasHalf)
	if _, err := io.ReadFull(resp.Body, buf[len(half):]); err != nil {
		t.Fatal(err)
	}
	e.wait(1)
	if rec, _ := e.last(); num(rec, "fastpath.response.splice.size") != int64(len(buf)) {
		t.Errorf("splice %d, want %d", num(rec, "fastpath.response.splice.size"), len(buf))
	}
}

func TestReverseProxyResponseHeaderTimeout(t *testing.T) {
	upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		readRequest(br)
		br.ReadByte() // never answer; returns when the proxy gives up
	})
	e := newProxyEnv(t, upstream, proxyOpts{tr: &Transport{ResponseHeaderTimeout: 50 * time.Millisecond}})
	resp, _, err := get(t, e, "/")
	e.wait(1)
	if err != nil || resp.StatusCode != 502 {
		t.Fatalf("got %v, %v; want 502", resp, err)
	}
	checkOpen(t, e.tr, 0)
}

// TestReverseProxyClientAbort checks that a client leaving mid-splice, with
// a FIN or a reset, while the upstream streams or stalls, is a client
// abort wherever it shows: recorded client_aborted with the bytes that got
// out, the span without an upstream error, and nothing in ReverseProxy's
// ErrorLog (which httputil.ReverseProxy keeps for its upstream's read
// errors, and where it writes nothing when its own write to a client
// fails); and that the upstream connection is closed. With Listener and
// without, whose splice reports either socket's failure as its own.
func TestReverseProxyClientAbort(t *testing.T) {
	const sent = 64 << 10
	tests := []struct {
		name       string
		streams    bool // the upstream keeps sending: the client's failure stops the write
		reset      bool // the client resets rather than closes
		noListener bool
	}{
		{name: "closes, upstream stalls"},
		{name: "resets, upstream stalls", reset: true},
		{name: "closes, upstream streams", streams: true},
		{name: "resets, upstream streams", streams: true, reset: true},
		{name: "resets, upstream streams, no Listener", streams: true, reset: true, noListener: true},
		{name: "closes, upstream stalls, no Listener", noListener: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstreamClosed := make(chan struct{})
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				defer close(upstreamClosed)
				if _, err := readRequest(br); err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", 1<<30, strings.Repeat("a", sent))
				if tt.streams {
					chunk := []byte(strings.Repeat("b", 64<<10))
					for {
						if _, err := c.Write(chunk); err != nil {
							return // the proxy closed the connection
						}
					}
				}
				br.ReadByte() // EOF once the proxy closes this connection
			})
			var errorLog testutil.LockedBuffer
			e := newProxyEnv(t, upstream, proxyOpts{noListener: tt.noListener, rp: func(rp *httputil.ReverseProxy) {
				rp.ErrorLog = log.New(&errorLog, "", 0)
			}})
			c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, sent)); err != nil {
				t.Fatal(err)
			}
			if tt.reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			e.wait(1)
			select {
			case <-upstreamClosed:
			case <-time.After(time.Minute):
				t.Fatal("the upstream connection was not closed")
			}
			if got := errorLog.String(); got != "" {
				t.Errorf("ReverseProxy's ErrorLog says %q, want nothing", got)
			}
			rec, span := e.last()
			body := num(rec, "http.response.body.size")
			if rec["error.type"] != "client_aborted" || body < sent || (!tt.streams && body != sent) {
				t.Errorf("record %v, want client_aborted with %d bytes or more (exactly, when the upstream stalls)", rec, sent)
			}
			if splice := num(rec, "fastpath.response.splice.size"); !tt.noListener && splice != body {
				t.Errorf("recorded splice %d of the %d bytes, want all", splice, body)
			}
			if span.Status.Code == codes.Error || spanAttr(span, UpstreamErrorKey) != "" || hasException(span) {
				t.Errorf("span status %v, upstream error %q, events %v: a client leaving is not the upstream's fault",
					span.Status, spanAttr(span, UpstreamErrorKey), span.Events)
			}
			checkOpen(t, e.tr, 0)
		})
	}
}

// TestReverseProxyConcurrentReuse runs 100 downloads at once, twice: the
// upstream holds every response until all 100 requests have arrived, so
// each round needs 100 connections, and the second must reuse the first's.
func TestReverseProxyConcurrentReuse(t *testing.T) {
	const n = 100
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "big.bin", 1<<20)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	newRound := func() {
		mu.Lock()
		arrived, all = 0, make(chan struct{})
		mu.Unlock()
	}
	files := handlers.FileServer(root)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		ch := all
		mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Minute):
		}
		files.ServeHTTP(w, r)
	}))
	defer up.Close()
	tr := &Transport{MaxIdleConnsPerHost: n}
	e := newProxyEnv(t, up.URL, proxyOpts{tr: tr})
	for round := range 2 {
		newRound()
		errs := make(chan error, n)
		for range n {
			go func() {
				_, body, err := get(t, e, "/big.bin")
				if err == nil && !bytes.Equal(body, data) {
					err = fmt.Errorf("got %d bytes that differ", len(body))
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		e.wait(n)
		if d := e.dials.Load(); d != n {
			t.Fatalf("after round %d: %d dials, want %d", round, d, n)
		}
	}
	for _, rec := range e.records() {
		if num(rec, "fastpath.response.splice.size") != 1<<20 || num(rec, "http.response.body.size") != 1<<20 {
			t.Fatalf("record %v, want 1 MiB spliced", rec)
		}
	}
	if got := tr.open.Load(); got != n {
		t.Errorf("%d upstream connections open, want %d idle", got, n)
	}
	e.client.CloseIdleConnections()
	tr.CloseIdleConnections()
	checkOpen(t, tr, 0)
	checkNoGoroutines(t)
}

func TestReverseProxyIdleConnClosedByUpstream(t *testing.T) {
	closed := make(chan struct{})
	upstream := okUpstream(t, func(i, n int, c net.Conn) okStep {
		if i != 0 {
			return okDefault
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok 0")
		c.Close()
		close(closed)
		return okHangUp
	})
	e := newProxyEnv(t, upstream, proxyOpts{})
	if _, body, err := get(t, e, "/"); err != nil || string(body) != "ok 0" {
		t.Fatalf("first: %q, %v", body, err)
	}
	e.wait(1)
	<-closed
	if _, body, err := get(t, e, "/"); err != nil || string(body) != "ok 1" {
		t.Fatalf("second: %q, %v", body, err)
	}
	e.wait(1)
	if d := e.dials.Load(); d != 2 {
		t.Errorf("%d dials, want 2", d)
	}
}

func TestReverseProxyRetriesStaleConn(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		wantCode int
		wantBody string
	}{
		{name: "GET is sent again", method: "GET", wantCode: 200, wantBody: "ok 1"},
		{name: "POST is not", method: "POST", wantCode: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := okUpstream(t, func(i, n int, c net.Conn) okStep {
				if i == 0 && n == 1 {
					return okHangUp // the idle connection dies as it is reused
				}
				return okDefault
			})
			e := newProxyEnv(t, upstream, proxyOpts{})
			get(t, e, "/")
			e.wait(1)
			var reqBody io.Reader
			if tt.method == "POST" {
				reqBody = strings.NewReader("x")
			}
			req, _ := http.NewRequest(tt.method, e.url+"/", reqBody)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			e.wait(1)
			if resp.StatusCode != tt.wantCode || (tt.wantBody != "" && string(body) != tt.wantBody) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestReverseProxyUpload(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	defer up.Close()
	e := newProxyEnv(t, up.URL, proxyOpts{})
	data := testutil.RandomBytes(1 << 20)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(data)
		if chunked {
			body = io.MultiReader(body) // no length known: sent chunked
		}
		resp, err := e.client.Post(e.url+"/echo", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.wait(1)
		if !bytes.Equal(got, data) {
			t.Fatalf("chunked %v: echoed %d bytes that differ", chunked, len(got))
		}
		rec, _ := e.last()
		if num(rec, "http.request.body.size") != 1<<20 || num(rec, "fastpath.response.splice.size") != 1<<20 {
			t.Errorf("chunked %v: record %v, want 1 MiB up and 1 MiB spliced down", chunked, rec)
		}
	}
	if d := e.dials.Load(); d != 1 {
		t.Errorf("%d dials, want 1", d)
	}
}

func TestReverseProxyTLSUpstream(t *testing.T) {
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "big.bin", 200000)
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	up := httptest.NewTLSServer(handlers.FileServer(root))
	defer up.Close()
	tr := &Transport{Fallback: up.Client().Transport}
	e := newProxyEnv(t, up.URL, proxyOpts{tr: tr})
	_, body, err := get(t, e, "/big.bin")
	e.wait(1)
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("got %d bytes, %v", len(body), err)
	}
	rec, span := e.last()
	if num(rec, "fastpath.response.splice.size") != 0 || copyReason(span) != middleware.CopyReasonUpstreamTLS {
		t.Errorf("splice %d, reason %q; want 0 and %q", num(rec, "fastpath.response.splice.size"), copyReason(span), middleware.CopyReasonUpstreamTLS)
	}
}

func TestReverseProxyTLSClient(t *testing.T) {
	upstream, data := fileUpstream(t)
	u, _ := url.Parse(upstream)
	for _, h2 := range []bool{false, true} {
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: &Transport{}}
		spans := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
		srv := httptest.NewUnstartedServer(middleware.Tracing(middleware.WithTracerProvider(tp))(ReverseProxy(rp)))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		c := srv.Client()
		resp, err := c.Get(srv.URL + "/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close() // waits for the handler
		want := middleware.CopyReasonClientTLS
		if h2 {
			want = middleware.CopyReasonClientHTTP2
		}
		got := spans.GetSpans()
		if len(got) != 1 {
			t.Fatalf("%d spans", len(got))
		}
		reason := copyReason(got[0])
		if !bytes.Equal(body, data) || reason != want || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Errorf("h2 %v: %s, %d bytes, reason %q (want %q)", h2, resp.Proto, len(body), reason, want)
		}
	}
}

func TestReverseProxyDialFails(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	e := newProxyEnv(t, "http://"+addr, proxyOpts{})
	resp, _, err := get(t, e, "/")
	e.wait(1)
	if err != nil || resp.StatusCode != 502 {
		t.Fatalf("got %v, %v; want 502", resp, err)
	}
}

func TestReverseProxyConstruction(t *testing.T) {
	tests := []struct {
		name string
		rp   *httputil.ReverseProxy
	}{
		{name: "nil", rp: nil},
		{name: "neither Rewrite nor Director", rp: &httputil.ReverseProxy{}},
		{name: "both", rp: &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}, Director: func(*http.Request) {}}},
		{name: "nil *Transport", rp: &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}, Transport: (*Transport)(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if s, _ := v.(string); !strings.HasPrefix(s, "fastpath/proxy: ") {
					t.Errorf("panic %v, want one starting with fastpath/proxy:", v)
				}
			}()
			ReverseProxy(tt.rp)
		})
	}
}

// TestReverseProxyFlushes checks that a response ReverseProxy flushes as it
// copies is copied, not spliced: its flush timer would call Flush on the
// ResponseWriter while the splice writes to it.
func TestReverseProxyFlushes(t *testing.T) {
	data := testutil.RandomBytes(1 << 20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("ct"))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	}))
	defer up.Close()
	tests := []struct {
		name       string
		interval   time.Duration
		ct         string
		wantPath   string
		wantReason middleware.CopyReason
		wantSplice int64
	}{
		{name: "no flushing", ct: "application/octet-stream", wantPath: "splice", wantSplice: 1 << 20},
		{name: "FlushInterval", interval: time.Millisecond, ct: "application/octet-stream", wantPath: "copy", wantReason: middleware.CopyReasonFlushInterval},
		{name: "FlushInterval -1", interval: -1, ct: "application/octet-stream", wantPath: "copy", wantReason: middleware.CopyReasonFlushInterval},
		{name: "event stream", ct: "text/event-stream", wantPath: "copy", wantReason: middleware.CopyReasonFlushInterval},
		{name: "event stream with parameters", ct: "Text/Event-Stream; charset=utf-8", wantPath: "copy", wantReason: middleware.CopyReasonFlushInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newProxyEnv(t, up.URL, proxyOpts{rp: func(rp *httputil.ReverseProxy) { rp.FlushInterval = tt.interval }})
			resp, body, err := get(t, e, "/?ct="+url.QueryEscape(tt.ct))
			e.wait(1)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
				t.Fatalf("%v, %v: got %d bytes, want the %d sent", resp, err, len(body), len(data))
			}
			rec, span := e.last()
			if got := spanAttr(span, BodyKey); got != tt.wantPath {
				t.Errorf("%s = %q, want %q", BodyKey, got, tt.wantPath)
			}
			if got := copyReason(span); got != tt.wantReason {
				t.Errorf("%s = %q, want %q", CopyReasonKey, got, tt.wantReason)
			}
			if got := num(rec, "fastpath.response.splice.size"); got != tt.wantSplice {
				t.Errorf("recorded splice %d, want %d", got, tt.wantSplice)
			}
			if got := num(rec, "http.response.body.size"); got != 1<<20 {
				t.Errorf("recorded body %d, want %d", got, 1<<20)
			}
			if _, ok := rec["error.type"]; ok {
				t.Errorf("error.type %v, want none", rec["error.type"])
			}
		})
	}
}

// TestReverseProxyUpstreamTimeout checks that an upstream stalling mid-body
// past a deadline on its connection is recorded as a timeout: the test sets
// the deadline (to the past) once the client holds all that was sent.
func TestReverseProxyUpstreamTimeout(t *testing.T) {
	const sent = 40000
	tests := []struct {
		name       string
		interval   time.Duration
		wantPath   string
		wantSplice int64
	}{
		{name: "spliced", wantPath: "splice", wantSplice: sent},
		{name: "copied", interval: -1, wantPath: "copy", wantSplice: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("t", sent))
				br.ReadByte() // stall until the proxy closes
			})
			conns := make(chan net.Conn, 1)
			tr := &Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err == nil {
					conns <- c
				}
				return c, err
			}}
			e := newProxyEnv(t, upstream, proxyOpts{tr: tr, rp: func(rp *httputil.ReverseProxy) { rp.FlushInterval = tt.interval }})
			resp, err := e.client.Get(e.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if _, err := io.ReadFull(resp.Body, make([]byte, sent)); err != nil {
				t.Fatal(err)
			}
			(<-conns).SetReadDeadline(time.Unix(0, 0))
			rest, err := io.ReadAll(resp.Body)
			if err == nil || len(rest) != 0 {
				t.Errorf("after the stall: %d more bytes, %v; want the body cut", len(rest), err)
			}
			e.wait(1)
			rec, span := e.last()
			if got := spanAttr(span, UpstreamErrorKey); got != "timeout" {
				t.Errorf("%s = %q, want timeout", UpstreamErrorKey, got)
			}
			if got := spanAttr(span, BodyKey); got != tt.wantPath {
				t.Errorf("%s = %q, want %q", BodyKey, got, tt.wantPath)
			}
			if got, _ := rec["error.type"].(string); got != "handler_aborted" {
				t.Errorf("error.type %q, want handler_aborted", got)
			}
			if got := num(rec, "http.response.body.size"); got != sent {
				t.Errorf("recorded body %d, want %d", got, sent)
			}
			if got := num(rec, "fastpath.response.splice.size"); got != tt.wantSplice {
				t.Errorf("recorded splice %d, want %d", got, tt.wantSplice)
			}
			checkOpen(t, tr, 0)
		})
	}
}

// TestReverseProxyEarlyAnswer checks an upstream that answers before it has
// read the request body: the answer goes to the client, and the connection,
// its request not written whole, is not reused. Under -race it also checks
// that the body's writer and the response reader share no unsynchronised
// state.
func TestReverseProxyEarlyAnswer(t *testing.T) {
	tests := []struct {
		name   string
		answer string
	}{
		{name: "Connection: close", answer: "HTTP/1.1 413 Content Too Large\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntoo big"},
		{name: "keep-alive", answer: "HTTP/1.1 413 Content Too Large\r\nContent-Length: 7\r\n\r\ntoo big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.Method == "GET" {
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok %d", i)
					br.ReadByte()
					return
				}
				io.WriteString(c, tt.answer)
				io.Copy(io.Discard, req.Body) // then take the body, so nobody waits
				br.ReadByte()
			})
			e := newProxyEnv(t, upstream, proxyOpts{})
			resp, err := e.client.Post(e.url+"/", "application/octet-stream", bytes.NewReader(make([]byte, 4<<20)))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			e.wait(1)
			if err != nil || resp.StatusCode != 413 || string(body) != "too big" {
				t.Fatalf("got %d %q, %v; want 413 too big", resp.StatusCode, body, err)
			}
			if _, body, err := get(t, e, "/"); err != nil || string(body) != "ok 1" {
				t.Fatalf("next request: %q, %v; want ok 1, on a new connection", body, err)
			}
			e.wait(1)
			if d := e.dials.Load(); d != 2 {
				t.Errorf("%d dials, want 2", d)
			}
		})
	}
}
