package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// guard bounds a request that must not hang: a generous minute, so that a
// hang fails the test rather than stalling it.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// failingBody gives n bytes, then fails, once wait (when not nil) is
// closed.
type failingBody struct {
	n    int
	err  error
	wait chan struct{}
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		if b.wait != nil {
			<-b.wait
		}
		return 0, b.err
	}
	k := min(len(p), b.n)
	clear(p[:k])
	b.n -= k
	return k, nil
}

// TestTransportAsClient checks the transport outside ReverseProxy:
// bodies are read normally and connections reused.
func TestTransportAsClient(t *testing.T) {
	upstream, data := fileUpstream(t)
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for range 3 {
		resp, err := c.Get(upstream + "/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(body, data) {
			t.Fatalf("%d bytes, %v", len(body), err)
		}
	}
	if d := tr.dials.Load(); d != 1 {
		t.Errorf("%d dials, want 1", d)
	}
}

// TestTransportRequestBodyFails checks that a request body that cannot
// be written ends the round trip at once (with the upstream's answer when
// one came), and that its connection is closed, not pooled.
func TestTransportRequestBodyFails(t *testing.T) {
	errBody := errors.New("the client's body failed")
	tests := []struct {
		name       string
		body       func(answered chan struct{}) io.Reader
		upstream   func(c net.Conn, br *bufio.Reader, answered chan struct{}) // after the request head
		wantStatus int                                                        // 0: an error
		wantErr    error                                                      // when not nil, the error names it
	}{
		{name: "body fails, upstream waits for the rest",
			body: func(chan struct{}) io.Reader { return &failingBody{n: 64 << 10, err: errBody} },
			upstream: func(c net.Conn, br *bufio.Reader, _ chan struct{}) {
				io.Copy(io.Discard, br) // the rest never comes; EOF when the proxy closes
			},
			wantErr: errBody},
		{name: "upstream closes after the head",
			body:     func(chan struct{}) io.Reader { return bytes.NewReader(make([]byte, 32<<20)) },
			upstream: func(c net.Conn, br *bufio.Reader, _ chan struct{}) {}},
		{name: "upstream resets after the head",
			body:     func(chan struct{}) io.Reader { return bytes.NewReader(make([]byte, 32<<20)) },
			upstream: func(c net.Conn, br *bufio.Reader, _ chan struct{}) { c.(*net.TCPConn).SetLinger(0) }},
		{name: "upstream answers, then the body fails",
			body: func(answered chan struct{}) io.Reader {
				return &failingBody{n: 64 << 10, err: errBody, wait: answered}
			},
			upstream: func(c net.Conn, br *bufio.Reader, answered chan struct{}) {
				io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 7\r\n\r\ntoo big")
				close(answered)
				io.Copy(io.Discard, br) // until the proxy closes
			},
			wantStatus: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answered := make(chan struct{})
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				tp := textproto.NewReader(br)
				if _, err := tp.ReadLine(); err != nil { // the request line
					return
				}
				if _, err := tp.ReadMIMEHeader(); err != nil {
					return
				}
				tt.upstream(c, br, answered)
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(guard(t), "POST", upstream+"/", tt.body(answered))
			req.ContentLength = 32 << 20
			resp, err := tr.RoundTrip(req)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the round trip hung: %v", err)
			}
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("status %d, want an error", resp.StatusCode)
				}
				if tt.wantErr != nil && !strings.Contains(err.Error(), tt.wantErr.Error()) {
					t.Errorf("error %v, want one wrapping %v", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("error %v, want status %d", err, tt.wantStatus)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus || string(body) != "too big" || err != nil {
					t.Errorf("got %d %q, %v; want %d too big", resp.StatusCode, body, err, tt.wantStatus)
				}
			}
			checkOpen(t, tr, 0)
		})
	}
}

// TestTransportResponseHeaderTimeout checks that the header timeout
// gives ErrResponseHeaderTimeout, a net.Error timeout, and that it starts
// only once the request body is written.
func TestTransportResponseHeaderTimeout(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "no body"},
		{name: "a body", body: strings.Repeat("b", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				readRequest(br)
				br.ReadByte() // never answer; returns when the proxy gives up
			})
			tr := &Transport{ResponseHeaderTimeout: 20 * time.Millisecond}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequestWithContext(guard(t), "POST", upstream+"/", body)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("status %d, want an error", resp.StatusCode)
			}
			var ne net.Error
			if !errors.Is(err, ErrResponseHeaderTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("error %v, want ErrResponseHeaderTimeout, a net.Error timeout", err)
			}
			checkOpen(t, tr, 0)
		})
	}
	t.Run("starts after the body", func(t *testing.T) {
		var armed atomic.Bool
		armedEarly := make(chan bool, 1)
		// The body's reader stops after 64 KiB (more than the request's
		// buffer, so the head is out) until the upstream has looked.
		looked := make(chan struct{})
		body := io.MultiReader(bytes.NewReader(make([]byte, 64<<10)), gateReader{looked}, bytes.NewReader(make([]byte, 64<<10)))
		upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			armedEarly <- armed.Load()
			close(looked)
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			br.ReadByte()
		})
		tr := &Transport{ResponseHeaderTimeout: time.Minute, headTimerArmed: func() { armed.Store(true) }}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(guard(t), "POST", upstream+"/", body)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if early := <-armedEarly; early || string(b) != "ok" {
			t.Errorf("armed before the body was written: %v; body %q", early, b)
		}
	})
}

// gateReader reads nothing until its channel is closed, and then ends.
type gateReader struct{ open <-chan struct{} }

func (g gateReader) Read([]byte) (int, error) {
	<-g.open
	return 0, io.EOF
}

// TestTransportReusesReadBodies checks when a body's connection goes
// back to the pool: when the body was read to its Content-Length, whether
// or not the reader went on to see EOF, and not when it was left unread.
func TestTransportReusesReadBodies(t *testing.T) {
	tests := []struct {
		name      string
		read      func(r io.Reader) error
		wantDials int64
	}{
		{name: "read to EOF", read: func(r io.Reader) error { _, err := io.ReadAll(r); return err }, wantDials: 1},
		{name: "read exactly its length", read: func(r io.Reader) error { _, err := io.ReadFull(r, make([]byte, 5)); return err }, wantDials: 1},
		{name: "read in part", read: func(r io.Reader) error { _, err := io.ReadFull(r, make([]byte, 4)); return err }, wantDials: 3},
		{name: "not read", read: func(io.Reader) error { return nil }, wantDials: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
				}
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			for range 3 {
				req, _ := http.NewRequestWithContext(guard(t), "GET", upstream+"/", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if err := tt.read(resp.Body); err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			if d := tr.dials.Load(); d != tt.wantDials {
				t.Errorf("%d dials, want %d", d, tt.wantDials)
			}
		})
	}
}

// hiddenConn hides the connection's descriptor: nothing can peek at it.
type hiddenConn struct{ net.Conn }

// TestTransportNoPeekNoReuse checks that a connection nobody can peek
// at is never reused: stray bytes on it could not be seen.
func TestTransportNoPeekNoReuse(t *testing.T) {
	tests := []struct {
		name  string
		first string
	}{
		{name: "clean", first: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok 0"},
		{name: "stray bytes", first: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok 0HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := okUpstream(t, func(i, n int, c net.Conn) okStep {
				if i == 0 && n == 0 {
					io.WriteString(c, tt.first)
					return okAnswered
				}
				return okDefault
			})
			tr := &Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return hiddenConn{c}, nil
			}}
			defer tr.CloseIdleConnections()
			var got []string
			for range 2 {
				req, _ := http.NewRequestWithContext(guard(t), "GET", upstream+"/", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			if want := []string{"ok 0", "ok 1"}; fmt.Sprint(got) != fmt.Sprint(want) || tr.dials.Load() != 2 {
				t.Errorf("bodies %q in %d dials, want %q in 2", got, tr.dials.Load(), want)
			}
		})
	}
}

// padHead returns a response head of exactly n bytes.
func padHead(status string, n int) string {
	h := "HTTP/1.1 " + status + "\r\nX-Pad: \r\n\r\n"
	if status[0] != '1' {
		h = "HTTP/1.1 " + status + "\r\nContent-Length: 2\r\nX-Pad: \r\n\r\n"
	}
	return strings.Replace(h, "X-Pad: ", "X-Pad: "+strings.Repeat("p", n-len(h)), 1)
}

// TestTransportHeadLimits checks MaxResponseHeaderBytes, below the
// head buffer's first size too, as one budget for the final head and the
// informational ones before it, and the bound on their number.
func TestTransportHeadLimits(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		heads     string // the 1xx heads and the final head; "ok" follows
		want1xx   int
		wantError bool
	}{
		{name: "head at the limit", max: 1000, heads: padHead("200 OK", 1000)},
		{name: "head over the limit", max: 1000, heads: padHead("200 OK", 1001), wantError: true},
		{name: "1xx and head within the limit", max: 1000, heads: padHead("103 Early Hints", 400) + padHead("200 OK", 600), want1xx: 1},
		{name: "1xx and head over the limit", max: 1000, heads: padHead("103 Early Hints", 400) + padHead("103 Early Hints", 400) + padHead("200 OK", 201), want1xx: 2, wantError: true},
		{name: "as many 1xx as allowed", heads: strings.Repeat(padHead("103 Early Hints", 100), maxInterim) + padHead("200 OK", 100), want1xx: maxInterim},
		{name: "one 1xx too many", heads: strings.Repeat(padHead("103 Early Hints", 100), maxInterim+1) + padHead("200 OK", 100), want1xx: maxInterim, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, tt.heads+"ok")
				br.ReadByte()
			})
			tr := &Transport{MaxResponseHeaderBytes: tt.max}
			defer tr.CloseIdleConnections()
			n1xx := 0
			ctx := httptrace.WithClientTrace(guard(t), &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error {
				n1xx++
				return nil
			}})
			req, _ := http.NewRequestWithContext(ctx, "GET", upstream+"/", nil)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					t.Errorf("body %q, want ok", b)
				}
			}
			if (err != nil) != tt.wantError || n1xx != tt.want1xx {
				t.Errorf("error %v after %d 1xx; want error: %v after %d", err, n1xx, tt.wantError, tt.want1xx)
			}
		})
	}
}

// TestTransportDropsBigHeadBuffer checks that a connection pooled after
// a big response head does not keep the buffer that head grew.
func TestTransportDropsBigHeadBuffer(t *testing.T) {
	upstream := rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(c, padHead("200 OK", 100<<10)+"ok")
		}
	})
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(guard(t), "GET", upstream+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var caps []int
	for _, conns := range tr.idle {
		for _, pc := range conns {
			caps = append(caps, cap(pc.head))
		}
	}
	if len(caps) != 1 || caps[0] > headBufSize {
		t.Errorf("idle connections' head buffers %v, want one of at most %d bytes", caps, headBufSize)
	}
}

// TestHeadEndIn checks the search for a head's end from a given offset.
func TestHeadEndIn(t *testing.T) {
	tests := []struct {
		b    string
		from int
		want int
	}{
		{"HTTP/1.1 200 OK\r\n\r\n", 0, 19},
		{"HTTP/1.1 200 OK\r\n\r\n", 18, 19},
		{"HTTP/1.1 200 OK\n\n", 16, 17},
		{"HTTP/1.1 200 OK\r\nA: b\r\n", 0, -1},
		{"\r\nHTTP/1.1 200 OK\r\n", 0, -1},
		{"\n", 0, -1},
		{"HTTP/1.1 200 OK\r\n\r\nbody\r\n\r\n", 0, 19},
	}
	for _, tt := range tests {
		if got := headEndIn([]byte(tt.b), tt.from); got != tt.want {
			t.Errorf("headEndIn(%q, %d) = %d, want %d", tt.b, tt.from, got, tt.want)
		}
	}
}
