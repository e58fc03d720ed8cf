package ktls

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
)

// handshake runs crypto/tls's server over an hsConn, as the listener does,
// against a crypto/tls client, and returns both ends after the handshake.
func handshake(t *testing.T, l *listener, clientCfg *tls.Config) (*hsConn, *tls.Conn, *tls.Conn) {
	t.Helper()
	sraw, craw := tcpPair(t)
	h := newHSConn(sraw)
	t.Cleanup(func() { h.Close() })
	server := tls.Server(h, l.tlsConfig)
	client := tls.Client(craw, clientCfg)
	errc := make(chan error, 1)
	go func() { errc <- client.Handshake() }()
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return h, server, client
}

type nopListener struct{ net.Listener }

func (nopListener) Close() error { return nil }

// TestCountRecords checks the record counting the hand-off relies on
// (countRecords) against what crypto/tls really sent: after the handshake
// the server writes w records and the client c, and the counts must be
// exactly the records under the application keys, tickets and Finished
// messages included, for every suite the kernel takes.
func TestCountRecords(t *testing.T) {
	cert, pool := certificate(t)
	tests := []struct {
		name       string
		version    uint16
		suite      uint16 // TLS 1.2 only; TLS 1.3 gets AES-128-GCM
		noTickets  bool
		resume     bool
		wantTX     uint64 // before the test's own records
		wantRX     uint64
		wantReason Reason // of eligible
	}{
		{name: "TLS 1.3 tickets on", version: tls.VersionTLS13, wantTX: 1},
		{name: "TLS 1.3 tickets off", version: tls.VersionTLS13, noTickets: true, wantTX: 0},
		{name: "TLS 1.3 resumed", version: tls.VersionTLS13, resume: true, wantTX: 1},
		{name: "TLS 1.2 AES-128-GCM", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, wantTX: 1, wantRX: 1},
		{name: "TLS 1.2 AES-256-GCM", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, wantTX: 1, wantRX: 1},
		{name: "TLS 1.2 ChaCha20-Poly1305", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, wantTX: 1, wantRX: 1},
		{name: "TLS 1.2 tickets off", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, noTickets: true, wantTX: 1, wantRX: 1},
		{name: "TLS 1.2 resumed", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, resume: true, wantReason: FallbackResumedTLS12},
	}
	for _, tt := range tests {
		for _, writes := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s/%d records", tt.name, writes), func(t *testing.T) {
				scfg := &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: tt.noTickets}
				ccfg := &tls.Config{RootCAs: pool, ServerName: "ktls.test", MinVersion: tt.version, MaxVersion: tt.version,
					ClientSessionCache: tls.NewLRUClientSessionCache(1)}
				l := NewListener(nopListener{}, scfg).(*listener)
				if tt.suite != 0 {
					ccfg.CipherSuites = []uint16{tt.suite}
				}
				if tt.resume {
					_, _, c := handshake(t, l, ccfg)
					// The client stores a TLS 1.3 ticket when it reads it.
					c.SetReadDeadline(aLongTimeAgo)
					c.Read(make([]byte, 1))
				}
				h, server, client := handshake(t, l, ccfg)
				cs := server.ConnectionState()
				if tt.resume != cs.DidResume {
					t.Fatalf("DidResume = %v", cs.DidResume)
				}
				if r := eligible(&cs); r != tt.wantReason {
					t.Fatalf("eligible = %q, want %q", r, tt.wantReason)
				}
				if tt.wantReason != InKernel {
					return
				}
				go func() {
					for range writes {
						client.Write([]byte("from the client"))
					}
				}()
				for range writes {
					if _, err := server.Write([]byte("from the server")); err != nil {
						t.Fatal(err)
					}
				}
				// Read the client's records through crypto/tls, so the
				// hsConn has seen them.
				got := 0
				want := writes * len("from the client")
				buf := make([]byte, 64)
				for got < want {
					n, err := server.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					got += n
				}
				rx, tx, err := h.keys.sessionKeys(&cs, func() ([]byte, error) { return serverRandom(h.out.records) })
				if err != nil {
					t.Fatal(err)
				}
				gotTX, err := countRecords(tx, h.out.records)
				if err != nil {
					t.Fatal(err)
				}
				gotRX, err := countRecords(rx, h.in.records)
				if err != nil {
					t.Fatal(err)
				}
				if gotTX != tt.wantTX+uint64(writes) || gotRX != tt.wantRX+uint64(writes) {
					t.Errorf("counted tx %d rx %d, want %d and %d", gotTX, gotRX, tt.wantTX+uint64(writes), tt.wantRX+uint64(writes))
				}
				// The wrong direction's keys open nothing.
				if n, _ := countRecords(rx, h.out.records); n != 0 {
					t.Errorf("the client's keys opened %d server records", n)
				}
			})
		}
	}
}

// TestRecordBoundary checks the record-boundary invariant of hsConn: with
// a request written right behind the client's Finished, crypto/tls's
// handshake returns without having read a byte of it, and the bytes are
// still on the socket.
func TestRecordBoundary(t *testing.T) {
	cert, pool := certificate(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			l := NewListener(nopListener{}, &tls.Config{Certificates: []tls.Certificate{cert}}).(*listener)
			sraw, craw := tcpPair(t)
			h := newHSConn(sraw)
			server := tls.Server(h, l.tlsConfig)
			client := tls.Client(craw, &tls.Config{RootCAs: pool, ServerName: "ktls.test", MaxVersion: version})
			request := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			errc := make(chan error, 1)
			go func() {
				if err := client.Handshake(); err != nil {
					errc <- err
					return
				}
				_, err := client.Write(request)
				errc <- err
			}()
			if err := server.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !h.atBoundary() {
				t.Fatal("crypto/tls stopped inside a record")
			}
			// The request's record is wholly on the socket: header, then body.
			hdr := make([]byte, recordHeaderLen)
			if _, err := io.ReadFull(sraw, hdr); err != nil {
				t.Fatal(err)
			}
			if hdr[0] != recordApplicationData {
				t.Fatalf("next record on the socket has type %d, want application data", hdr[0])
			}
			body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
			if _, err := io.ReadFull(sraw, body); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(body, request) {
				t.Fatal("the request is in plaintext")
			}
		})
	}
}
