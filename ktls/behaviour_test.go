package ktls

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fastpath-go/fastpath/internal/vmtest"
)

// needKernel skips where the kernel has no kernel TLS; in the guest it
// must have it.
func needKernel(t *testing.T) {
	t.Helper()
	if r := Available(); r != InKernel {
		if vmtest.InGuest() {
			t.Fatalf("kernel TLS unavailable in the guest: %s", r)
		}
		t.Skipf("kernel TLS unavailable here (%s); TestGuest runs this test in a QEMU guest", r)
	}
}

// patientHandshake is the handshake timeout of tests that are not about it:
// a handshake in the emulated guest on a busy machine has taken more than
// DefaultHandshakeTimeout.
var patientHandshake = WithHandshakeTimeout(5 * time.Minute)

// tap keeps the bytes a client reads, to look at the server's records.
type tap struct {
	net.Conn
	in recordLog
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.in.write(p[:n])
	return n, err
}

// decrypt opens a TLS 1.3 AES-GCM record and returns its content and type.
func decrypt(k *trafficKeys, rec []byte, seq uint64) ([]byte, byte, bool) {
	nonce := bytes.Clone(k.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(seq >> (56 - 8*i))
	}
	pt, err := k.aead().Open(nil, nonce, rec[recordHeaderLen:], rec[:recordHeaderLen])
	if err != nil {
		return nil, 0, false
	}
	pt = bytes.TrimRight(pt, "\x00")
	if len(pt) == 0 {
		return nil, 0, false
	}
	return pt[:len(pt)-1], pt[len(pt)-1], true
}

// seal makes a TLS 1.3 AES-GCM record of the given type.
func seal(k *trafficKeys, typ byte, content []byte, seq uint64) []byte {
	nonce := bytes.Clone(k.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(seq >> (56 - 8*i))
	}
	inner := append(bytes.Clone(content), typ)
	hdr := []byte{recordApplicationData, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+tagLen))
	return k.aead().Seal(hdr, nonce, inner, hdr)
}

// session is a client connected through NewListener to a server end the
// test drives itself.
type session struct {
	server  net.Conn // what Accept returned
	client  *tls.Conn
	tap     *tap
	keys    *keyLog // the client's secrets
	cs      tls.ConnectionState
	ln      net.Listener
	version uint16
}

func connect(t *testing.T, version uint16, opts ...Option) *session {
	t.Helper()
	cert, pool := certificate(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, append([]Option{patientHandshake}, opts...)...)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := &session{tap: &tap{Conn: raw}, keys: &keyLog{}, ln: ln, version: version}
	s.client = tls.Client(s.tap, &tls.Config{RootCAs: pool, ServerName: "ktls.test", MinVersion: version, MaxVersion: version,
		KeyLogWriter: s.keys, ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	t.Cleanup(func() { s.client.Close() })
	if err := s.client.Handshake(); err != nil {
		t.Fatal(err)
	}
	s.cs = s.client.ConnectionState()
	s.server = <-accepted
	if s.server != nil {
		t.Cleanup(func() { s.server.Close() })
	}
	return s
}

// serverRecords returns the server's records the client read, decrypted
// (TLS 1.3 AES-GCM), from the first under the application key.
func (s *session) serverRecords(t *testing.T) (contents [][]byte, types []byte) {
	t.Helper()
	_, tx, err := s.keys.sessionKeys(&s.cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	for _, rec := range s.tap.in.records {
		c, typ, ok := decrypt(tx, rec, seq)
		if !ok {
			if seq > 0 {
				t.Fatalf("server record %d does not open", seq)
			}
			continue
		}
		contents, types = append(contents, c), append(types, typ)
		seq++
	}
	return contents, types
}

// lastIsCloseNotify fails t unless the server's last record is a
// close_notify alert.
func (s *session) lastIsCloseNotify(t *testing.T) {
	t.Helper()
	c, types := s.serverRecords(t)
	if len(types) == 0 || types[len(types)-1] != recordAlert || !bytes.Equal(c[len(c)-1], []byte{1, alertCloseNotify}) {
		t.Fatalf("the server's last record is not close_notify: types %v", types)
	}
}

// drain reads the client until EOF or error and returns what it read.
func drain(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(time.Minute))
	return io.ReadAll(c)
}

// TestClose checks the ends of a kernel TLS connection: the client's
// close_notify and an abrupt close end the server's reads with io.EOF, and
// the server's Close sends close_notify through the kernel.
func TestClose(t *testing.T) {
	needKernel(t)
	tests := []struct {
		name  string
		close func(s *session) error
	}{
		{name: "client close_notify", close: func(s *session) error { return s.client.CloseWrite() }},
		{name: "abrupt close", close: func(s *session) error { return s.client.NetConn().Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := connect(t, tls.VersionTLS13)
			if _, ok := s.server.(*Conn); !ok {
				t.Fatalf("Accept returned %T", s.server)
			}
			if _, err := s.client.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := tt.close(s); err != nil {
				t.Fatal(err)
			}
			got, err := drain(s.server)
			if err != nil || string(got) != "hello" {
				t.Fatalf("server read %q, %v; want hello and io.EOF", got, err)
			}
			if _, err := s.server.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read after the end: %v, want io.EOF", err)
			}
		})
	}
	t.Run("server close", func(t *testing.T) {
		s := connect(t, tls.VersionTLS13)
		if _, err := s.server.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		if err := s.server.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := drain(s.client)
		if err != nil || string(got) != "bye" {
			t.Fatalf("client read %q, %v", got, err)
		}
		s.lastIsCloseNotify(t)
	})
}

// TestResetDuringSendfile resets the connection while ReadFrom sends a
// file by sendfile and a Read waits, as net/http's background read does:
// ReadFrom must return the error a plain TCP connection returns (the
// client is gone), not hang, panic or report the file sent. With small
// socket buffers the file cannot have gone out when the reset comes.
func TestResetDuringSendfile(t *testing.T) {
	needKernel(t)
	tests := []struct {
		name   string
		size   int64
		buffer int // SO_SNDBUF of the server and SO_RCVBUF of the client; 0: the system's
		// times: how the reset meets the kernel's send varies, so a small
		// file is reset several times.
		times int
	}{
		{name: "64 MiB", size: 64 << 20, times: 1},
		{name: "1 MiB, 64 KiB buffers", size: 1 << 20, buffer: 64 << 10, times: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, make([]byte, tt.size), 0o644); err != nil {
				t.Fatal(err)
			}
			for i := range tt.times {
				resetDuringSendfile(t, p, tt.size, tt.buffer, i)
			}
		})
	}
}

func resetDuringSendfile(t *testing.T, path string, size int64, buffer, i int) {
	t.Helper()
	s := connect(t, tls.VersionTLS13)
	raw := s.client.NetConn().(*tap).Conn.(*net.TCPConn)
	if buffer != 0 {
		if err := s.server.(*Conn).NetConn().(*net.TCPConn).SetWriteBuffer(buffer); err != nil {
			t.Fatal(err)
		}
		if err := raw.SetReadBuffer(buffer); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.server.(io.ReaderFrom).ReadFrom(&io.LimitedReader{R: f, N: size})
		done <- result{n, err}
	}()
	// A read in flight meanwhile, as net/http's background read.
	read := make(chan error, 1)
	go func() {
		_, err := s.server.Read(make([]byte, 1))
		read <- err
	}()
	defer func() { <-read }()
	// Read some of it, then reset.
	if _, err := io.ReadFull(s.client, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	raw.SetLinger(0)
	raw.Close()
	if r := <-done; !errors.Is(r.err, syscall.ECONNRESET) && !errors.Is(r.err, syscall.EPIPE) {
		t.Fatalf("reset %d: ReadFrom sent %d of %d bytes and returned %v, want ECONNRESET or EPIPE", i, r.n, size, r.err)
	}
	if _, err := s.server.Write([]byte("x")); err == nil {
		t.Errorf("reset %d: Write after the reset returned no error", i)
	}
}

// TestKeyUpdate sends a KeyUpdate from the client (crypto/tls's client has
// no way to, so the test seals the record itself with the client's logged
// secret). A kernel that cannot re-key (before 6.14) must end the
// connection with close_notify and ErrKeyUpdate, and never read a record
// under the stale key.
func TestKeyUpdate(t *testing.T) {
	needKernel(t)
	if probe(tls.VersionTLS13, cipherAESGCM128).rekey {
		t.Skip("this kernel re-keys; the re-key path needs a client that follows it (not crypto/tls)")
	}
	for _, requested := range []byte{0, 1} {
		t.Run(fmt.Sprintf("update_requested=%d", requested), func(t *testing.T) {
			s := connect(t, tls.VersionTLS13)
			if _, err := s.client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(s.server, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("server read %q, %v", buf, err)
			}
			rx, _, err := s.keys.sessionKeys(&s.cs, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The client's record 0 was "ping"; the KeyUpdate is record 1,
			// and the next data goes under the next key, which this
			// kernel never learns.
			rec := seal(rx, recordHandshake, []byte{typeKeyUpdate, 0, 0, 1, requested}, 1)
			rec = append(rec, seal(rx.next(), recordApplicationData, []byte("after"), 0)...)
			if _, err := s.tap.Conn.Write(rec); err != nil {
				t.Fatal(err)
			}
			n, err := s.server.Read(buf)
			if !errors.Is(err, ErrKeyUpdate) {
				t.Fatalf("server read %d bytes, %v; want ErrKeyUpdate", n, err)
			}
			if _, err := s.server.Write([]byte("x")); !errors.Is(err, ErrKeyUpdate) {
				t.Errorf("write after the KeyUpdate: %v, want ErrKeyUpdate", err)
			}
			s.server.Close()
			if got, err := drain(s.client); err != nil || len(got) != 0 {
				t.Fatalf("client read %q, %v", got, err)
			}
			s.lastIsCloseNotify(t)
		})
	}
}

// TestRecordLimit lowers the AES-GCM record limit and checks that the
// server stops exactly at it: every byte written before reaches the
// client, then close_notify, and Write fails with ErrRecordLimit.
func TestRecordLimit(t *testing.T) {
	needKernel(t)
	defer func(l uint64) { aesGCMRecordLimit = l }(aesGCMRecordLimit)
	const limit = 40
	aesGCMRecordLimit = limit
	s := connect(t, tls.VersionTLS13)
	c := s.server.(*Conn)
	var sent int
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		var n int
		n, err = c.Write(bytes.Repeat([]byte{'a' + byte(i%26)}, 10))
		sent += n
	}
	if !errors.Is(err, ErrRecordLimit) {
		t.Fatalf("Write: %v, want ErrRecordLimit", err)
	}
	c.Close()
	got, err := drain(s.client)
	if err != nil || len(got) != sent {
		t.Fatalf("client read %d bytes, %v; server sent %d", len(got), err, sent)
	}
	_, types := s.serverRecords(t)
	// Sequence numbers 0..limit-1 carried the ticket and data; limit the
	// close_notify.
	if len(types) != limit+1 {
		t.Errorf("the server sent %d records under its key, want %d", len(types), limit+1)
	}
	s.lastIsCloseNotify(t)
}

// TestHandOffFailures makes the kernel refuse one direction's keys. A
// refused TLS_TX must leave the connection to crypto/tls, whole; a refused
// TLS_RX (TLS_TX already in force) must close it with a close_notify the
// kernel sealed, and no byte of plaintext.
func TestHandOffFailures(t *testing.T) {
	needKernel(t)
	Supports(tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256) // probe before the refusals
	tests := []struct {
		name   string
		refuse int
	}{
		{name: "TLS_TX refused", refuse: tlsTX},
		{name: "TLS_RX refused", refuse: tlsRX},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(f func(int, int, *trafficKeys, uint64) error) { setKeys = f }(setKeys)
			setKeys = func(fd, dir int, k *trafficKeys, seq uint64) error {
				if dir == tt.refuse {
					return syscall.ENOMEM
				}
				return setKeysSockopt(fd, dir, k, seq)
			}
			cert, pool := certificate(t)
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, patientHandshake)
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, _ := ln.Accept()
				accepted <- c
			}()
			raw, err := net.Dial("tcp", inner.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s := &session{tap: &tap{Conn: raw}, keys: &keyLog{}}
			s.client = tls.Client(s.tap, &tls.Config{RootCAs: pool, ServerName: "ktls.test", MaxVersion: tls.VersionTLS13, KeyLogWriter: s.keys})
			defer s.client.Close()
			if err := s.client.Handshake(); err != nil {
				t.Fatal(err)
			}
			s.cs = s.client.ConnectionState()
			if _, err := s.client.Write([]byte("secret request")); err != nil {
				t.Fatal(err)
			}
			switch tt.refuse {
			case tlsTX:
				c := <-accepted
				defer c.Close()
				st, _ := StateOf(c)
				if _, ok := c.(*tls.Conn); !ok || st.Reason != FallbackSetsockopt {
					t.Fatalf("Accept returned %T with %+v, want the *tls.Conn with %q", c, st, FallbackSetsockopt)
				}
				buf := make([]byte, len("secret request"))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "secret request" {
					t.Fatalf("server read %q, %v", buf, err)
				}
				if _, err := c.Write([]byte("secret answer")); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len("secret answer"))
				if _, err := io.ReadFull(s.client, got); err != nil || string(got) != "secret answer" {
					t.Fatalf("client read %q, %v", got, err)
				}
			case tlsRX:
				got, err := drain(s.client)
				if err != nil || len(got) != 0 {
					t.Fatalf("client read %q, %v; want nothing and io.EOF", got, err)
				}
				s.lastIsCloseNotify(t)
				ln.Close()
				if c := <-accepted; c != nil {
					t.Fatalf("Accept returned %T for a closed connection", c)
				}
			}
			if bytes.Contains(s.tap.in.pending, []byte("secret")) {
				t.Fatal("plaintext reached the client")
			}
			for _, rec := range s.tap.in.records {
				if bytes.Contains(rec, []byte("secret")) {
					t.Fatal("plaintext reached the client")
				}
			}
		})
	}
}

// TestPipelined writes two requests right behind the client's Finished,
// in one TCP segment for TLS 1.3 (the client's writes are held until
// then), and expects both answered: the kernel's receive side must start
// at the first record after the handshake.
func TestPipelined(t *testing.T) {
	needKernel(t)
	cert, pool := certificate(t)
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, patientHandshake)
			kernel := make(chan bool, 2)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				st, _ := FromContext(r.Context())
				kernel <- st.Kernel
				io.WriteString(w, "answer to "+r.URL.Path)
			})}
			go srv.Serve(ln)
			defer srv.Close()
			raw, err := net.Dial("tcp", inner.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			hc := &holdConn{Conn: raw, hold: version == tls.VersionTLS13, pass: 1}
			c := tls.Client(hc, &tls.Config{RootCAs: pool, ServerName: "ktls.test", MaxVersion: version, MinVersion: version})
			defer c.Close()
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := hc.release(); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for _, path := range []string{"/one", "/two"} {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				if string(b) != "answer to "+path {
					t.Errorf("got %q", b)
				}
				if !<-kernel {
					t.Error("not served in kernel TLS")
				}
			}
		})
	}
}

// holdConn passes a client's first writes (the ClientHello), then keeps
// the rest until release and sends them in one write.
type holdConn struct {
	net.Conn
	hold bool
	pass int
	buf  []byte
}

func (h *holdConn) Write(p []byte) (int, error) {
	if h.pass > 0 {
		h.pass--
		return h.Conn.Write(p)
	}
	if h.hold {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

func (h *holdConn) release() error {
	h.hold = false
	_, err := h.Conn.Write(h.buf)
	return err
}

// wantReason is what an HTTP/1.1 session gets here: kernel TLS where the
// kernel has it, else the kernel's reason.
func wantReason() State {
	r := Available()
	return State{Kernel: r == InKernel, Reason: r}
}

// TestH2AndHTTP1 serves an h2 client (falls back with FallbackALPN, and
// net/http serves HTTP/2 over the *tls.Conn) and an HTTP/1.1 client (kernel
// TLS, or on a kernel without it, the reason) from one listener. It runs on
// any kernel.
func TestH2AndHTTP1(t *testing.T) {
	cert, pool := certificate(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}, patientHandshake)
	type seen struct {
		proto int
		st    State
		tls   bool
	}
	seenc := make(chan seen, 1)
	body := strings.Repeat("0123456789", 10000)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := FromContext(r.Context())
		seenc <- seen{proto: r.ProtoMajor, st: st, tls: r.TLS != nil}
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tests := []struct {
		name      string
		protos    []string
		wantProto int
		want      State
	}{
		{name: "h2", protos: []string{"h2", "http/1.1"}, wantProto: 2, want: State{Reason: FallbackALPN}},
		{name: "http/1.1", protos: []string{"http/1.1"}, wantProto: 1, want: wantReason()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "ktls.test", NextProtos: tt.protos},
				ForceAttemptHTTP2: tt.wantProto == 2}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr}).Get("https://" + inner.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got := <-seenc
			if string(b) != body || res.ProtoMajor != tt.wantProto || got.proto != tt.wantProto || got.st != tt.want {
				t.Errorf("got HTTP/%d (server saw %d), state %+v, %d bytes; want HTTP/%d, %+v", res.ProtoMajor, got.proto, got.st, len(b), tt.wantProto, tt.want)
			}
			if tt.wantProto == 2 && !got.tls {
				t.Error("r.TLS is nil for the h2 request")
			}
		})
	}
}

// TestSlowHandshake holds a connection that never sends a byte while
// another client is served, then sees it dropped at the handshake timeout.
func TestSlowHandshake(t *testing.T) {
	cert, pool := certificate(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, WithHandshakeTimeout(time.Second))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	defer srv.Close()
	silent, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "ktls.test"}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get("https://" + inner.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("got %q", b)
	}
	// The silent client is dropped once its handshake times out.
	silent.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent client read %d, %v; want io.EOF", n, err)
	}
}

// TestConcurrent runs 200 TLS downloads at once and checks that after the
// server closes no goroutine or descriptor of theirs is left.
func TestConcurrent(t *testing.T) {
	cert, pool := certificate(t)
	// Warm up what stays for the process: the probe, crypto/tls's tables.
	Supports(tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256)
	fds := openFDs(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// 200 handshakes at once on an emulated CPU take a while: this test is
	// about what is left behind, not about the timeout.
	ln := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, WithHandshakeTimeout(5*time.Minute))
	body := bytes.Repeat([]byte("fastpath"), 8192)
	want := wantReason()
	wrong := make(chan State, 200)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, _ := FromContext(r.Context()); st != want {
			wrong <- st
		}
		w.Write(body)
	})}
	go srv.Serve(ln)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "ktls.test"}, DisableKeepAlives: true}
	errc := make(chan error, 200)
	for range 200 {
		go func() {
			res, err := (&http.Client{Transport: tr}).Get("https://" + inner.Addr().String() + "/")
			if err != nil {
				errc <- err
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err == nil && !bytes.Equal(b, body) {
				err = fmt.Errorf("body of %d bytes differs", len(b))
			}
			errc <- err
		}()
	}
	for range 200 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	tr.CloseIdleConnections()
	srv.Close()
	close(wrong)
	for st := range wrong {
		t.Errorf("a connection had state %+v, want %+v", st, want)
	}
	// Earlier tests' connections may still be closing when fds is read,
	// so fewer is fine; more is a leak.
	runtime.GC()
	if got := openFDs(t); got > fds {
		t.Errorf("%d descriptors open after, %d before", got, fds)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(es)
}
