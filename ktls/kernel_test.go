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
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/connreg"
	"github.com/fastpath-go/fastpath/internal/vmtest"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
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
			"big.bin":      randomBytes(1<<20 + 123),
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

// served is what the server saw of one request.
type served struct {
	state    ktls.State
	stateOK  bool
	sendfile int64
	tls      bool // the handler could find the session's ConnectionState
}

// recorder wraps a handler and records, per request (by its X-Test-Id),
// the connection's kernel TLS state and the bytes sendfile sent for it.
type recorder struct {
	mu   sync.Mutex
	reqs map[string]chan served
}

func newRecorder() *recorder { return &recorder{reqs: map[string]chan served{}} }

func (rec *recorder) ch(id string) chan served {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c, ok := rec.reqs[id]
	if !ok {
		c = make(chan served, 1)
		rec.reqs[id] = c
	}
	return c
}

// counter finds the middleware.Listener connection of a request in either
// wrapping order: zerocopy's own registry when it is the outer wrapper,
// beneath the registered kernel TLS connection otherwise.
func counter(ctx context.Context) *zerocopy.Conn {
	if zc := zerocopy.FromContext(ctx); zc != nil {
		return zc
	}
	zc, _ := connreg.FindInContext[*zerocopy.Conn](ctx)
	return zc
}

// conn is the outermost registered connection of a request, in either
// order.
func conn(ctx context.Context) net.Conn {
	if zc := zerocopy.FromContext(ctx); zc != nil {
		return zc
	}
	return connreg.FromContext(ctx)
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s served
		zc := counter(r.Context())
		before := int64(-1)
		if zc != nil {
			before = zc.Sendfile()
		}
		h.ServeHTTP(w, r)
		if zc != nil {
			s.sendfile = zc.Sendfile() - before
		} else {
			s.sendfile = -1
		}
		s.state, s.stateOK = ktls.FromContext(r.Context())
		if !s.stateOK {
			// middleware.Listener outside: zerocopy's own registry holds
			// the address until it moves onto internal/connreg.
			s.state, s.stateOK = ktls.StateOf(zerocopy.FromContext(r.Context()))
		}
		_, s.tls = connreg.Find[interface{ ConnectionState() tls.ConnectionState }](conn(r.Context()))
		s.tls = s.tls || r.TLS != nil
		if id := r.Header.Get("X-Test-Id"); id != "" {
			rec.ch(id) <- s
		}
	})
}

// Wrapping orders of middleware.Listener and ktls.NewListener.
const (
	ktlsOutside = "ktls(middleware)"
	ktlsInside  = "middleware(ktls)"
)

// server is an HTTPS file server through a relay, and a plain HTTP twin
// serving the same files for reference sendfile counts.
type server struct {
	https, plain string // addresses: the relay's, the plain server's
	relay        *relay
	rec          *recorder
	files        map[string][]byte
	kln          net.Listener
}

func startServer(t *testing.T, order string, cfg *tls.Config, opts ...ktls.Option) *server {
	t.Helper()
	dir, fs := files(t)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	rec := newRecorder()
	h := rec.wrap(handlers.FileServer(root, handlers.WithEncodings("gzip")))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var outer, kln net.Listener
	switch order {
	case ktlsOutside:
		kln = ktls.NewListener(middleware.Listener(ln), cfg, opts...)
		outer = kln
	case ktlsInside:
		kln = ktls.NewListener(ln, cfg, opts...)
		outer = middleware.Listener(kln)
	}
	srv := &http.Server{Handler: h, ErrorLog: discardLog()}
	go srv.Serve(outer)
	t.Cleanup(func() { srv.Close() })

	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	psrv := &http.Server{Handler: h, ErrorLog: discardLog()}
	go psrv.Serve(middleware.Listener(pln))
	t.Cleanup(func() { psrv.Close() })

	r := newRelay(t, ln.Addr().String())
	return &server{https: r.ln.Addr().String(), plain: pln.Addr().String(), relay: r, rec: rec, files: fs, kln: kln}
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

var downloads = []download{
	{name: "whole", path: "/big.bin", status: 200, body: whole("big.bin")},
	{name: "small", path: "/small.txt", status: 200, body: whole("small.txt")},
	{name: "single range", path: "/big.bin", header: map[string]string{"Range": "bytes=1000-700999"}, status: 206, body: slice("big.bin", 1000, 700999)},
	{name: "multi-range", path: "/big.bin", header: map[string]string{"Range": "bytes=0-99,5000-500000,1000000-1040000"}, status: 206,
		body: parts("big.bin", [2]int{0, 99}, [2]int{5000, 500000}, [2]int{1000000, 1040000})},
	{name: "sidecar", path: "/page.html", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200, body: whole("page.html.gz")},
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
	suite     uint16 // offered (TLS 1.2) and expected
	noTickets bool
}

func suiteCases() []suiteCase {
	tls13 := uint16(tls.TLS_AES_128_GCM_SHA256)
	if os.Getenv("KTLS_TEST_CHACHA") == "1" {
		// Run by TestDownloadsChaCha20: without AES in the CPU, Go's
		// crypto/tls prefers ChaCha20-Poly1305 for TLS 1.3.
		tls13 = tls.TLS_CHACHA20_POLY1305_SHA256
	}
	return []suiteCase{
		{name: "TLS 1.3", version: tls.VersionTLS13, suite: tls13},
		{name: "TLS 1.3 tickets off", version: tls.VersionTLS13, suite: tls13, noTickets: true},
		{name: "TLS 1.2 AES-128-GCM", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 AES-256-GCM", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{name: "TLS 1.2 ChaCha20-Poly1305", version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	}
}

// TestDownloads serves files over kernel TLS in both wrapping orders with
// middleware.Listener and checks each response byte for byte, that
// sendfile sent exactly what it sends over plain HTTP for the same
// request, that the kernel took one connection per case (tls_stat), and
// that no plaintext crossed the wire.
func TestDownloads(t *testing.T) {
	requireKernelTLS(t)
	cert, pool := certificate()
	for _, sc := range suiteCases() {
		for _, order := range []string{ktlsOutside, ktlsInside} {
			t.Run(sc.name+"/"+order, func(t *testing.T) {
				s := startServer(t, order, &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: sc.noTickets})
				ccfg := clientConfig(pool)
				ccfg.MinVersion, ccfg.MaxVersion = sc.version, sc.version
				if sc.version == tls.VersionTLS12 {
					ccfg.CipherSuites = []uint16{sc.suite}
				}
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
				for i, d := range downloads {
					id := fmt.Sprintf("%s-%d", d.name, i)
					res, body := get(t, c, "https://ktls.test", d, id)
					if res.StatusCode != d.status {
						t.Fatalf("%s: status %d, want %d", d.name, res.StatusCode, d.status)
					}
					if res.TLS.CipherSuite != sc.suite || res.TLS.Version != sc.version {
						t.Fatalf("%s: negotiated %s %s, want %s %s", d.name, tls.VersionName(res.TLS.Version),
							tls.CipherSuiteName(res.TLS.CipherSuite), tls.VersionName(sc.version), tls.CipherSuiteName(sc.suite))
					}
					if err := d.body(s.files, res, body); err != nil {
						t.Fatalf("%s: %v", d.name, err)
					}
					got := <-s.rec.ch(id)
					if !got.stateOK || !got.state.Kernel {
						t.Fatalf("%s: state %+v (found %v), want kernel TLS", d.name, got.state, got.stateOK)
					}
					if !got.tls {
						t.Errorf("%s: the handler found no ConnectionState", d.name)
					}
					pid := id + "-plain"
					get(t, plain, "http://"+s.plain, d, pid)
					want := <-s.rec.ch(pid)
					if got.sendfile != want.sendfile {
						t.Errorf("%s: sendfile sent %d bytes over kernel TLS, %d over plain HTTP", d.name, got.sendfile, want.sendfile)
					}
					if d.name == "whole" && got.sendfile < int64(len(s.files["big.bin"])-512) {
						t.Errorf("whole: sendfile sent %d of %d bytes", got.sendfile, len(s.files["big.bin"]))
					}
				}
				c.CloseIdleConnections()
				after := tlsStat(t)
				for _, k := range []string{"TlsTxSw", "TlsRxSw"} {
					if d := after[k] - before[k]; d != 1 {
						t.Errorf("%s went up by %d, want 1 (one connection)", k, d)
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

// TestDownloadsChaCha20 runs TestDownloads's TLS 1.3 cases again in a
// child process whose CPU lacks AES as far as Go knows
// (GODEBUG=cpu.aes=off), so crypto/tls negotiates ChaCha20-Poly1305: Go
// offers no other way to choose a TLS 1.3 suite.
func TestDownloadsChaCha20(t *testing.T) {
	requireKernelTLS(t)
	if os.Getenv("KTLS_TEST_CHACHA") == "1" {
		t.Skip("in the child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDownloads$/^TLS_1.3", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=cpu.aes=off", "KTLS_TEST_CHACHA=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, name := range []string{"TLS_1.3/" + ktlsOutside, "TLS_1.3_tickets_off/" + ktlsInside} {
		if !bytes.Contains(out, []byte("--- PASS: TestDownloads/"+name)) {
			t.Errorf("the child did not pass TestDownloads/%s:\n%s", name, out)
		}
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
