package benchproc

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

func TestMachine(t *testing.T) {
	base := "machine: " + testutil.Machine() + ", " + runtime.Version()
	if got := Machine(); got != base {
		t.Errorf("Machine() = %q, want %q", got, base)
	}
	if got, want := Machine("nginx 1.22.1 (sendfile on)"), base+", nginx 1.22.1 (sendfile on)"; got != want {
		t.Errorf("Machine(nginx) = %q, want %q", got, want)
	}
}

func TestWriteFile(t *testing.T) {
	for _, size := range []int64{0, 5, 1 << 20, 3<<20 + 5} {
		path := filepath.Join(t.TempDir(), "f")
		if err := WriteFile(path, size); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(got)) != size {
			t.Fatalf("size %d: wrote %d bytes", size, len(got))
		}
		for i, b := range got {
			if b != byte(i*7) {
				t.Fatalf("size %d: byte %d is %d, want %d", size, i, b, byte(i*7))
			}
		}
	}
}

func TestNginxCommand(t *testing.T) {
	dir := t.TempDir()
	argv, err := NginxCommand(dir, "up", NginxFiles("127.0.0.1:8080", "/srv/files"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "up.conf")
	if want := []string{"nginx", "-p", dir, "-e", filepath.Join(dir, "up-error.log"), "-c", conf}; !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	got, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	want := `daemon off;
master_process off;
worker_processes 1;
pid DIR/up.pid;
error_log DIR/up-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path DIR/up-tmp/body;
	proxy_temp_path DIR/up-tmp/proxy;
	fastcgi_temp_path DIR/up-tmp/fastcgi;
	uwsgi_temp_path DIR/up-tmp/uwsgi;
	scgi_temp_path DIR/up-tmp/scgi;
	server { listen 127.0.0.1:8080; root /srv/files; location / {} }
}
`
	if string(got) != strings.ReplaceAll(want, "DIR", dir) {
		t.Errorf("configuration:\n%s\nwant:\n%s", got, strings.ReplaceAll(want, "DIR", dir))
	}
	if fi, err := os.Stat(filepath.Join(dir, "up-tmp")); err != nil || !fi.IsDir() {
		t.Errorf("temporary directory: %v", err)
	}
}

func TestNginxVersion(t *testing.T) {
	for out, want := range map[string]string{
		"nginx version: nginx/1.22.1\n":          "1.22.1",
		"nginx version: nginx/1.24.0 (Ubuntu)\n": "1.24.0 (Ubuntu)",
		"sh: nginx: not found\n":                 "",
		"":                                       "",
	} {
		if got := nginxVersion(out); got != want {
			t.Errorf("nginxVersion(%q) = %q, want %q", out, got, want)
		}
	}
}

func TestWorkDir(t *testing.T) {
	dir, files, err := WorkDir("benchproc-test")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if !strings.HasPrefix(filepath.Base(dir), "fastpath-benchproc-test") || files != filepath.Join(dir, "files") {
		t.Errorf("WorkDir = %s, %s", dir, files)
	}
	if entries, err := os.ReadDir(files); err != nil || len(entries) != 0 {
		t.Errorf("files holds %v, %v; want an empty directory", entries, err)
	}
}

func TestVerifyFile(t *testing.T) {
	good := make([]byte, 600<<10) // more than one read buffer
	for i := range good {
		good[i] = byte(i * 7)
	}
	changed := slices.Clone(good)
	changed[300<<10] ^= 1
	tests := []struct {
		name    string
		r       io.Reader
		wantN   int64
		wantErr string
	}{
		{name: "whole", r: bytes.NewReader(good), wantN: int64(len(good))},
		{name: "empty", r: bytes.NewReader(nil), wantN: 0},
		{name: "one read at a time", r: iotest.OneByteReader(bytes.NewReader(good[:1000])), wantN: 1000},
		{name: "a byte changed", r: bytes.NewReader(changed), wantN: 300 << 10,
			wantErr: fmt.Sprintf("byte %d is %d, want %d", 300<<10, changed[300<<10], good[300<<10])},
		{name: "read fails", r: io.MultiReader(bytes.NewReader(good[:10]), iotest.ErrReader(errors.New("reset"))), wantN: 10, wantErr: "reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := VerifyFile(tt.r)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if n != tt.wantN || gotErr != tt.wantErr {
				t.Errorf("VerifyFile = %d, %q; want %d, %q", n, gotErr, tt.wantN, tt.wantErr)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, 3<<20+5); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := VerifyFile(f); n != 3<<20+5 || err != nil {
		t.Errorf("VerifyFile of WriteFile's file = %d, %v", n, err)
	}
}

// TestCertificate serves HTTPS with the certificate and fetches from it
// with the pool, by IP address and by name.
func TestCertificate(t *testing.T) {
	certFile, keyFile, roots, err := Certificate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Errorf("%s: %v", host, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Errorf("%s: body %q", host, body)
		}
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
}

func TestNginxTLSFiles(t *testing.T) {
	tests := []struct {
		name       string
		directives []string
		want       string
	}{
		{name: "plain", want: "server { listen 127.0.0.1:8443 ssl; ssl_certificate /c.pem; ssl_certificate_key /k.pem; root /srv; location / {} }"},
		{name: "kTLS", directives: []string{"ssl_protocols TLSv1.3;", "ssl_conf_command Options KTLS;"},
			want: "server { listen 127.0.0.1:8443 ssl; ssl_certificate /c.pem; ssl_certificate_key /k.pem; ssl_protocols TLSv1.3; ssl_conf_command Options KTLS; root /srv; location / {} }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NginxTLSFiles("127.0.0.1:8443", "/srv", "/c.pem", "/k.pem", tt.directives...); got != tt.want {
				t.Errorf("NginxTLSFiles = %q, want %q", got, tt.want)
			}
		})
	}
}
