package ktls_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/fastpath-go/fastpath/ktls"
	"github.com/fastpath-go/fastpath/middleware"
)

// TestFallbackRecords serves two sessions that ktls leaves to crypto/tls,
// an h2 client and a resumed TLS 1.2 session, through the stack in both
// wrapping orders, and checks that every signal says so and why, and counts
// the body as copied for the reason a user could act on. The full TLS 1.2
// handshake before the resumption goes to the kernel.
func TestFallbackRecords(t *testing.T) {
	requireKernelTLS(t)
	cert, pool := certificate()
	big := download{name: "whole", path: "/big.bin", status: 200, body: whole("big.bin")}
	tests := []struct {
		name    string
		version uint16
		h2      bool
		// resume: a first connection makes the session the second
		// resumes.
		resume     bool
		want       ktls.State
		copyReason middleware.CopyReason
	}{
		{name: "h2", version: tls.VersionTLS13, h2: true, want: ktls.State{Reason: ktls.FallbackALPN}, copyReason: middleware.CopyReasonClientHTTP2},
		{name: "TLS 1.2 resumed", version: tls.VersionTLS12, resume: true, want: ktls.State{Reason: ktls.FallbackResumedTLS12}, copyReason: middleware.CopyReasonClientTLS},
	}
	for _, tt := range tests {
		for _, order := range []string{ktlsOutside, ktlsInside} {
			t.Run(tt.name+"/"+order, func(t *testing.T) {
				s := startServer(t, serverConfig{order: order, tls: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}})
				ccfg := clientConfig(pool)
				ccfg.MinVersion, ccfg.MaxVersion = tt.version, tt.version
				if tt.version == tls.VersionTLS12 {
					ccfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
				}
				if tt.h2 {
					ccfg.NextProtos = []string{"h2", "http/1.1"}
				}
				c := s.client(ccfg)
				defer c.CloseIdleConnections()
				c.Transport.(*http.Transport).ForceAttemptHTTP2 = tt.h2
				if tt.resume {
					res, body := get(t, c, "https://ktls.test", big, "first")
					if err := big.body(s.files, res, body); err != nil {
						t.Fatal(err)
					}
					s.stack.check(t, "first", want{status: 200, body: exactly(bigSize), scheme: "https", ktls: &ktls.State{Kernel: true},
						sendfile: exactly(bigSize - 512), level: slog.LevelInfo}, res.TLS)
					c.CloseIdleConnections()
				}

				res, body := get(t, c, "https://ktls.test", big, "fallback")
				if err := big.body(s.files, res, body); err != nil {
					t.Fatal(err)
				}
				if res.TLS.DidResume != tt.resume || (res.ProtoMajor == 2) != tt.h2 {
					t.Fatalf("served over %s, resumed %v", res.Proto, res.TLS.DidResume)
				}
				// crypto/tls encrypts in user space: sendfile sent
				// nothing, known in either order (inside, middleware.Listener
				// leaves the *tls.Conn unwrapped; outside, its connection
				// beneath crypto/tls counts no sendfile).
				sendfile := exactly(0)
				proto := "1.1"
				if tt.h2 {
					proto = "2"
				}
				s.stack.check(t, "fallback", want{status: 200, body: exactly(bigSize), scheme: "https", proto: proto, ktls: &tt.want,
					sendfile: sendfile, copyReason: tt.copyReason, copied: bigSize - 512, level: slog.LevelInfo}, res.TLS)
				s.relay.checkNoPlaintext(t, s.files)
			})
		}
	}
}

// resetBuffer is the client's receive buffer and the server's send buffer in
// TestClientLeavesRecords, set before either can grow: the kernel doubles each,
// and with a TLS record or two held on either side, a few hundred KiB of
// big.bin at most can have left the server while the client does not read
// (under 280 KiB measured in the guest, the handler still sending two
// seconds on).
const resetBuffer = 64 << 10

// leaving is how a client leaves a download in TestClientLeavesRecords.
type leaving string

const (
	// leaveReset resets the connection (SO_LINGER 0, then close).
	leaveReset leaving = "reset"
	// leaveFIN ends the client's side of the TCP connection (a FIN) without
	// close_notify.
	leaveFIN leaving = "abrupt close"
	// leaveCloseNotify sends close_notify, keeping the TCP connection open.
	leaveCloseNotify leaving = "close_notify"
)

// TestClientLeavesRecords has clients leave downloads of big.bin while
// sendfile is sending them, over plain HTTP and over kernel TLS in both
// wrapping orders, and checks that every signal records error.type
// client_aborted, logged at Info: the same over kernel TLS as over plain
// HTTP.
//
// The client reads the first 64 KiB of the body, more than the 512 bytes
// net/http writes itself, so sendfile has started; with the buffers at
// resetBuffer, sendfile cannot have finished when the client leaves. A
// client that ends its side (FIN or close_notify) waits until the server
// has read that end, which ends the request's context while the file
// server still sends, and then resets, as a client that stops reading
// would have to. A reset comes at any point of the server's work: what it
// meets first depends on which of its goroutines runs, so those cases
// reset several downloads.
func TestClientLeavesRecords(t *testing.T) {
	requireKernelTLS(t)
	cert, pool := certificate()
	tests := []struct {
		name  string
		order string
		tls   bool
		leave leaving
		times int
	}{
		{name: "plain HTTP/reset", order: ktlsOutside, leave: leaveReset, times: 8},
		{name: "plain HTTP/abrupt close", order: ktlsOutside, leave: leaveFIN, times: 2},
		{name: "kernel TLS/" + ktlsOutside + "/reset", order: ktlsOutside, tls: true, leave: leaveReset, times: 8},
		{name: "kernel TLS/" + ktlsInside + "/reset", order: ktlsInside, tls: true, leave: leaveReset, times: 8},
		{name: "kernel TLS/" + ktlsOutside + "/abrupt close", order: ktlsOutside, tls: true, leave: leaveFIN, times: 2},
		{name: "kernel TLS/" + ktlsInside + "/abrupt close", order: ktlsInside, tls: true, leave: leaveFIN, times: 2},
		{name: "kernel TLS/" + ktlsOutside + "/close_notify", order: ktlsOutside, tls: true, leave: leaveCloseNotify, times: 2},
		{name: "kernel TLS/" + ktlsInside + "/close_notify", order: ktlsInside, tls: true, leave: leaveCloseNotify, times: 2},
	}
	const read = 64 << 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, serverConfig{order: tt.order, tls: &tls.Config{Certificates: []tls.Certificate{cert}}, sendBuffer: resetBuffer})
			addr := s.plain
			if tt.tls {
				addr = s.direct
			}
			for i := range tt.times {
				id := fmt.Sprintf("%s-%d", tt.leave, i)
				// At least what the client read went out; at most the
				// whole file, as kernel TLS can take the rest of it after
				// the reset without an error (measured on Linux 6.1): the
				// error type is what must say the client left.
				w := want{status: 200, body: within(read, bigSize), scheme: "http", sendfile: within(read-512, bigSize-512),
					errorType: middleware.ErrorTypeClientAborted, level: slog.LevelInfo}
				if tt.tls {
					w.scheme, w.ktls = "https", &ktls.State{Kernel: true}
				}
				cs := leaveDownload(t, s.stack, addr, tt.tls, pool, id, s.files["big.bin"][:read], tt.leave)
				s.stack.check(t, id, w, cs)
			}
		})
	}
}

// leaveDownload asks addr for big.bin (over TLS if tlsOn), with a receive
// buffer of resetBuffer, reads the body's first len(first) bytes, checks
// them against first and leaves as leave says; it ends with a reset. It
// returns the session, if any.
func leaveDownload(t *testing.T, st *stack, addr string, tlsOn bool, pool *x509.CertPool, id string, first []byte, leave leaving) *tls.ConnectionState {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, resetBuffer)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	raw := c.(*net.TCPConn)
	defer raw.Close()
	var conn net.Conn = raw
	var tc *tls.Conn
	var cs *tls.ConnectionState
	if tlsOn {
		tc = tls.Client(raw, clientConfig(pool))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		state := tc.ConnectionState()
		conn, cs = tc, &state
	}
	if _, err := fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: ktls.test\r\nX-Test-Id: %s\r\n\r\n", id); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(res.Body, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, first) {
		t.Fatal("the first bytes of the body differ from big.bin's")
	}
	switch leave {
	case leaveFIN:
		err = raw.CloseWrite()
	case leaveCloseNotify:
		err = tc.CloseWrite()
	}
	if err != nil {
		t.Fatal(err)
	}
	if leave != leaveReset {
		st.waitGone(t, id)
	}
	if err := raw.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	raw.Close() // a reset, with the rest of the body unread
	return cs
}
