package ktls_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	_ "unsafe" // go:linkname, for tls13Suites

	"github.com/fastpath-go/fastpath/internal/vmtest"
	"github.com/fastpath-go/fastpath/ktls"
	"github.com/fastpath-go/fastpath/middleware"
)

// requireKernelTLS skips a test that needs kernel TLS where the kernel has
// none; in the guest it must have it.
func requireKernelTLS(t *testing.T) {
	t.Helper()
	if r := ktls.Available(); r != ktls.InKernel {
		if vmtest.InGuest() {
			t.Fatalf("kernel TLS unavailable in the guest: %s", r)
		}
		t.Skipf("kernel TLS unavailable here (%s); TestGuest runs this test in a QEMU guest", r)
	}
}

// TestGuest runs this package's kernel TLS tests in a QEMU guest booting
// Debian's kernel, once for all of them, when this machine's kernel lacks
// kernel TLS.
func TestGuest(t *testing.T) {
	if vmtest.InGuest() {
		t.Skip("in the guest")
	}
	if ktls.Available() == ktls.InKernel {
		t.Skip("kernel TLS is native here: the tests ran without a guest")
	}
	vmtest.RunTest(t, vmtest.Config{
		// The tls module and the crypto it asks the kernel for: AES-GCM
		// (aesni-intel, with the generic GHASH and CTR gcm needs) and
		// ChaCha20-Poly1305.
		Modules: []string{"tls", "gcm", "ctr", "ghash-generic", "aesni-intel", "ghash-clmulni-intel",
			"chacha20poly1305", "chacha-generic", "poly1305-generic"},
		// KTLS_GUEST_RUN narrows the guest's run to the tests it matches.
		Run:     os.Getenv("KTLS_GUEST_RUN"),
		Timeout: 10 * time.Minute,
	})
}

var (
	certOnce sync.Once
	testCert tls.Certificate
	testPool *x509.CertPool
)

func certificate() (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "ktls.test"},
			DNSNames:     []string{"ktls.test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		testPool = x509.NewCertPool()
		testPool.AddCert(leaf)
	})
	return testCert, testPool
}

// testFiles are what the file server serves: random bytes, so a plaintext
// leak is found by content, and big enough that sendfile carries most.
var (
	filesOnce sync.Once
	testFiles map[string][]byte
)

func files(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	filesOnce.Do(func() {
		testFiles = map[string][]byte{
			"big.bin":      randomBytes(bigSize),
			"small.txt":    randomBytes(300),
			"page.html":    randomBytes(100000),
			"page.html.gz": randomBytes(40000),
		}
	})
	dir := t.TempDir()
	for name, b := range testFiles {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, testFiles
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// relay copies raw TCP bytes between clients and the server and keeps all
// of them, to show that no plaintext crosses the wire.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	wire   []byte
	wg     sync.WaitGroup
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.wg.Add(2)
		go r.pipe(c, s)
		go r.pipe(s, c)
	}
}

func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.wire = append(r.wire, buf[:n]...)
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// Pass the end on, as an abrupt close or a FIN.
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	src.Close()
}

// checkNoPlaintext fails t if any 16-byte block of any served file (at the
// file's own 16-byte alignment, wherever it sits on the wire) crossed the
// relay. The files are random, so a match is a leak.
func (r *relay) checkNoPlaintext(t *testing.T, files map[string][]byte) {
	t.Helper()
	// Keyed by the block's first 8 bytes, checked in full on a hit.
	blocks := map[uint64][]byte{}
	names := map[uint64]string{}
	for name, b := range files {
		for i := 0; i+16 <= len(b); i += 16 {
			k := binary.LittleEndian.Uint64(b[i:])
			blocks[k], names[k] = b[i:i+16], name
		}
	}
	r.mu.Lock()
	wire := bytes.Clone(r.wire)
	r.mu.Unlock()
	if len(wire) == 0 {
		t.Fatal("the relay saw no bytes")
	}
	for i := 0; i+16 <= len(wire); i++ {
		if b, ok := blocks[binary.LittleEndian.Uint64(wire[i:])]; ok && bytes.Equal(b, wire[i:i+16]) {
			t.Fatalf("plaintext of %s crossed the wire at byte %d", names[binary.LittleEndian.Uint64(wire[i:])], i)
		}
	}
}

// Wrapping orders of middleware.Listener and ktls.NewListener.
const (
	ktlsOutside = "ktls(middleware)"
	ktlsInside  = "middleware(ktls)"
)

// server is an HTTPS file server through a relay, and a plain HTTP twin
// serving the same files through the same stack, for reference records.
type server struct {
	https  string // the relay's address
	direct string // the HTTPS server's own address
	plain  string // the plain server's
	relay  *relay
	stack  *stack
	files  map[string][]byte
}

// serverConfig says how startServer serves.
type serverConfig struct {
	order string // ktlsOutside or ktlsInside
	tls   *tls.Config
	// sendBuffer, when not 0, is set as SO_SNDBUF on every accepted
	// socket (HTTPS and plain).
	sendBuffer int
}

func startServer(t *testing.T, sc serverConfig) *server {
	t.Helper()
	dir, fs := files(t)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	st := newStack(t, root)

	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if sc.sendBuffer != 0 {
			return sendBufferListener{Listener: ln, size: sc.sendBuffer}
		}
		return ln
	}
	ln := listen()
	var outer net.Listener
	// A handshake in the emulated guest on a busy machine has taken more
	// than DefaultHandshakeTimeout; these tests are not about the timeout
	// (TestSlowHandshake is).
	hs := ktls.WithHandshakeTimeout(5 * time.Minute)
	switch sc.order {
	case ktlsOutside:
		outer = ktls.NewListener(middleware.Listener(ln), sc.tls, hs)
	case ktlsInside:
		outer = middleware.Listener(ktls.NewListener(ln, sc.tls, hs))
	default:
		t.Fatalf("unknown order %q", sc.order)
	}
	srv := &http.Server{Handler: st.handler, ErrorLog: discardLog()}
	go srv.Serve(outer)
	t.Cleanup(func() { srv.Close() })

	pln := listen()
	psrv := &http.Server{Handler: st.handler, ErrorLog: discardLog()}
	go psrv.Serve(middleware.Listener(pln))
	t.Cleanup(func() { psrv.Close() })

	r := newRelay(t, ln.Addr().String())
	return &server{https: r.ln.Addr().String(), direct: ln.Addr().String(), plain: pln.Addr().String(), relay: r, stack: st, files: fs}
}

// sendBufferListener sets the send buffer of the TCP connections it
// accepts, which stops the kernel from growing it.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetWriteBuffer(l.size); err != nil {
			tc.Close()
			return nil, err
		}
	}
	return c, err
}

// client returns an HTTP/1.1 client of s over TLS with cfg, through the
// relay, on one connection at a time.
func (s *server) client(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.https)
		},
		MaxConnsPerHost:    1,
		DisableCompression: true,
	}}
}

func clientConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, ServerName: "ktls.test", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
}

// download is one request of TestDownloads.
type download struct {
	name   string
	path   string
	header map[string]string
	status int
	body   func(files map[string][]byte, res *http.Response, got []byte) error
	// sendfile is what sendfile sends of the body, over plain HTTP and
	// kernel TLS alike: all of the file's bytes but the first 512, which
	// net/http writes itself.
	sendfile   int64
	copyReason middleware.CopyReason
}

func whole(name string) func(map[string][]byte, *http.Response, []byte) error {
	return func(f map[string][]byte, _ *http.Response, got []byte) error {
		if !bytes.Equal(got, f[name]) {
			return fmt.Errorf("body differs from %s (%d bytes, want %d)", name, len(got), len(f[name]))
		}
		return nil
	}
}

func slice(name string, from, to int) func(map[string][]byte, *http.Response, []byte) error {
	return func(f map[string][]byte, _ *http.Response, got []byte) error {
		if !bytes.Equal(got, f[name][from:to+1]) {
			return fmt.Errorf("body differs from %s[%d:%d]", name, from, to+1)
		}
		return nil
	}
}

func parts(name string, ranges ...[2]int) func(map[string][]byte, *http.Response, []byte) error {
	return func(f map[string][]byte, res *http.Response, got []byte) error {
		_, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if err != nil {
			return err
		}
		mr := multipart.NewReader(bytes.NewReader(got), params["boundary"])
		for i, r := range ranges {
			p, err := mr.NextPart()
			if err != nil {
				return fmt.Errorf("part %d: %v", i, err)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				return err
			}
			if !bytes.Equal(b, f[name][r[0]:r[1]+1]) {
				return fmt.Errorf("part %d differs from %s[%d:%d]", i, name, r[0], r[1]+1)
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			return fmt.Errorf("more parts than ranges: %v", err)
		}
		return nil
	}
}

// bigSize is the size of big.bin.
const bigSize = 1<<20 + 123

var downloads = []download{
	{name: "whole", path: "/big.bin", status: 200, body: whole("big.bin"), sendfile: bigSize - 512},
	{name: "small", path: "/small.txt", status: 200, body: whole("small.txt"), sendfile: 0, copyReason: middleware.CopyReasonSmallBody},
	{name: "single range", path: "/big.bin", header: map[string]string{"Range": "bytes=1000-700999"}, status: 206,
		body: slice("big.bin", 1000, 700999), sendfile: 700000 - 512},
	// Each part reaches net/http's ReadFrom on its own, which writes the
	// first 512 bytes it is handed itself until the header has gone out:
	// the first part (100 bytes) whole and 512 bytes of the second.
	{name: "multi-range", path: "/big.bin", header: map[string]string{"Range": "bytes=0-99,5000-500000,1000000-1040000"}, status: 206,
		body: parts("big.bin", [2]int{0, 99}, [2]int{5000, 500000}, [2]int{1000000, 1040000}), sendfile: 495001 - 512 + 40001},
	{name: "sidecar", path: "/page.html", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200,
		body: whole("page.html.gz"), sendfile: 40000 - 512},
}

// get makes one request and returns the response and body.
func get(t *testing.T, c *http.Client, base string, d download, id string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", base+d.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range d.header {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Test-Id", id)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// tlsStat returns /proc/net/tls_stat's counters.
func tlsStat(t *testing.T) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tls_stat")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) == 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			m[f[0]] = n
		}
	}
	return m
}

// suiteCase is a TLS version and cipher suite a download runs over.
type suiteCase struct {
	name      string
	version   uint16
	suite     uint16 // offered and expected
	noTickets bool
}

var suiteCases = []suiteCase{
	{name: "TLS 1.3 AES-128-GCM", version: tls.VersionTLS13, suite: tls.TLS_AES_128_GCM_SHA256},
	{name: "TLS 1.3 AES-128-GCM tickets off", version: tls.VersionTLS13, suite: tls.TLS_AES_128_GCM_SHA256, noTickets: true},
	{name: "TLS 1.3 AES-256-GCM", version: tls.VersionTLS13, suite: tls.TLS_AES_256_GCM_SHA384},
	{name: "TLS 1.3 ChaCha20-Poly1305", version: tls.VersionTLS13, suite: tls.TLS_CHACHA20_POLY1305_SHA256},
	{name: "TLS 1.2 AES-128-GCM", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	{name: "TLS 1.2 AES-256-GCM", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
	{name: "TLS 1.2 ChaCha20-Poly1305", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
}

// tls13Suites is crypto/tls's TLS 1.3 cipher suite list, which its client
// offers in this order and its server prefers in this order (when the
// client's first choice is AES-GCM and the CPU has AES). tls.Config has no
// TLS 1.3 suite setting, and crypto/tls keeps this variable reachable by
// linkname for the programs that need one.
//
//go:linkname tls13Suites crypto/tls.defaultCipherSuitesTLS13
var tls13Suites []uint16

// preferTLS13 puts suite first in tls13Suites, so that this process's
// clients and servers negotiate it in TLS 1.3, until the test ends. Tests
// of this package do not run in parallel.
func preferTLS13(t *testing.T, suite uint16) {
	t.Helper()
	saved := slices.Clone(tls13Suites)
	i := slices.Index(tls13Suites, suite)
	if i < 0 {
		t.Fatalf("crypto/tls has no TLS 1.3 suite %s", tls.CipherSuiteName(suite))
	}
	order := append([]uint16{suite}, slices.Delete(slices.Clone(saved), i, i+1)...)
	copy(tls13Suites, order)
	t.Cleanup(func() { copy(tls13Suites, saved) })
}

// TestDownloads serves files over kernel TLS through chi with Tracing,
// Metrics and Logger over handlers.FileServer, in both wrapping orders of
// middleware.Listener and ktls.NewListener, and checks each response byte
// for byte; that every signal records the request as kernel TLS, https, with
// exactly the bytes sendfile sends of it over plain HTTP (all past the first
// 512) and no copy; that the handler sees the session in r.TLS; that the
// kernel took each connection (tls_stat); and that no plaintext crossed the
// wire. A TLS 1.3 case then downloads again on a new connection, which
// resumes the session when tickets are on (a resumed TLS 1.2 session falls
// back: TestFallbackRecords).
func TestDownloads(t *testing.T) {
	requireKernelTLS(t)
	cert, pool := certificate()
	for _, sc := range suiteCases {
		for _, order := range []string{ktlsOutside, ktlsInside} {
			t.Run(sc.name+"/"+order, func(t *testing.T) {
				ccfg := clientConfig(pool)
				ccfg.MinVersion, ccfg.MaxVersion = sc.version, sc.version
				if sc.version == tls.VersionTLS12 {
					ccfg.CipherSuites = []uint16{sc.suite}
				} else {
					preferTLS13(t, sc.suite)
				}
				s := startServer(t, serverConfig{order: order, tls: &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: sc.noTickets}})
				c := s.client(ccfg)
				defer c.CloseIdleConnections()
				plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
				defer plain.CloseIdleConnections()
				// The first session of a version and cipher probes the
				// kernel on a loopback pair of its own: do it first.
				if r := ktls.Supports(sc.version, sc.suite); r != ktls.InKernel {
					t.Fatalf("Supports = %q", r)
				}
				before := tlsStat(t)
				fetch := func(d download, id string, resumed bool) {
					t.Helper()
					res, body := get(t, c, "https://ktls.test", d, id)
					if res.StatusCode != d.status {
						t.Fatalf("%s: status %d, want %d", id, res.StatusCode, d.status)
					}
					if res.TLS.CipherSuite != sc.suite || res.TLS.Version != sc.version || res.TLS.DidResume != resumed {
						t.Fatalf("%s: negotiated %s %s resumed %v, want %s %s resumed %v", id, tls.VersionName(res.TLS.Version),
							tls.CipherSuiteName(res.TLS.CipherSuite), res.TLS.DidResume, tls.VersionName(sc.version), tls.CipherSuiteName(sc.suite), resumed)
					}
					if err := d.body(s.files, res, body); err != nil {
						t.Fatalf("%s: %v", id, err)
					}
					w := want{status: d.status, body: exactly(int64(len(body))), scheme: "https", ktls: &ktls.State{Kernel: true},
						sendfile: exactly(d.sendfile), copyReason: d.copyReason, level: slog.LevelInfo}
					s.stack.check(t, id, w, res.TLS)

					// The same request over plain HTTP: the same bytes by
					// sendfile, the same copy reason.
					pid := id + "-plain"
					pres, pbody := get(t, plain, "http://"+s.plain, d, pid)
					if err := d.body(s.files, pres, pbody); err != nil {
						t.Fatalf("%s over plain HTTP: %v", id, err)
					}
					w.body, w.scheme, w.ktls = exactly(int64(len(pbody))), "http", nil
					s.stack.check(t, pid, w, nil)
				}
				for i, d := range downloads {
					fetch(d, fmt.Sprintf("%s-%d", d.name, i), false)
				}
				conns := int64(1)
				if sc.version == tls.VersionTLS13 {
					c.CloseIdleConnections()
					fetch(downloads[0], "second connection", !sc.noTickets)
					conns++
				}
				c.CloseIdleConnections()
				after := tlsStat(t)
				for _, k := range []string{"TlsTxSw", "TlsRxSw"} {
					if d := after[k] - before[k]; d != conns {
						t.Errorf("%s went up by %d, want %d (one per connection)", k, d, conns)
					}
				}
				if d := after["TlsDecryptError"] - before["TlsDecryptError"]; d != 0 {
					t.Errorf("TlsDecryptError went up by %d", d)
				}
				s.relay.checkNoPlaintext(t, s.files)
			})
		}
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
