package middleware

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/ktls"
)

// TestKTLSRecords checks what the records say of connections accepted by
// ktls.NewListener, in either order of wrapping with Listener: whether kernel
// TLS carried the request (here, where the kernel has no tls module, it
// falls back and says why), url.scheme https, and a handler that sees
// r.TLS. The kernel TLS side, where net/http leaves r.TLS nil and the
// middleware fills it in, runs in a guest with ktls's tests.
func TestKTLSRecords(t *testing.T) {
	cert := testCertificate(t)
	kernel := ktls.Available()
	tests := []struct {
		name       string
		http2      bool
		wantKernel bool
		wantReason ktls.Reason
	}{
		{"HTTP/1.1", false, kernel == ktls.InKernel, kernel},
		{"HTTP/2", true, false, ktls.FallbackALPN},
	}
	for _, order := range []string{"ktls outside", "ktls inside"} {
		for _, tt := range tests {
			t.Run(order+"/"+tt.name, func(t *testing.T) {
				tel := newTelemetry(t)
				logs, l := newCapture()
				sawTLS := make(chan bool, 1)
				h := Tracing(WithTracerProvider(tel.tp))(Metrics(WithMeterProvider(tel.mp))(Logger(l)(
					http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						sawTLS <- r.TLS != nil && r.TLS.HandshakeComplete
						w.Write([]byte("hello"))
					}))))
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
				var served net.Listener
				if order == "ktls outside" {
					served = ktls.NewListener(Listener(ln), cfg)
				} else {
					served = Listener(ktls.NewListener(ln, cfg))
				}
				srv := &http.Server{Handler: h, TLSConfig: cfg}
				go srv.Serve(served)
				defer srv.Close()

				tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: tt.http2}
				if !tt.http2 {
					tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				}
				defer tr.CloseIdleConnections()
				resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get("https://" + ln.Addr().String() + "/x")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.ProtoMajor == 2; got != tt.http2 {
					t.Fatalf("served over %s", resp.Proto)
				}
				if !<-sawTLS {
					t.Error("the handler saw no completed TLS session in r.TLS")
				}
				tr.CloseIdleConnections()
				srv.Shutdown(t.Context()) // the records are complete once handlers return

				e := logs.only(t)
				if got, ok := e.Attrs[KTLSKey].(bool); !ok || got != tt.wantKernel {
					t.Errorf("log %s = %v, want %v", KTLSKey, e.Attrs[KTLSKey], tt.wantKernel)
				}
				wantFallback := any(nil)
				if !tt.wantKernel {
					wantFallback = string(tt.wantReason)
				}
				if got := e.Attrs[KTLSFallbackKey]; got != wantFallback {
					t.Errorf("log %s = %v, want %v", KTLSFallbackKey, got, wantFallback)
				}
				spans := tel.spans.GetSpans()
				if len(spans) != 1 {
					t.Fatalf("%d spans", len(spans))
				}
				attrs := map[string]string{}
				for _, kv := range spans[0].Attributes {
					attrs[string(kv.Key)] = kv.Value.Emit()
				}
				if attrs["url.scheme"] != "https" || attrs[KTLSKey] != map[bool]string{true: "true", false: "false"}[tt.wantKernel] {
					t.Errorf("span url.scheme %q, %s %q", attrs["url.scheme"], KTLSKey, attrs[KTLSKey])
				}
			})
		}
	}
}

// testCertificate returns a self-signed certificate for 127.0.0.1.
func testCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
