package benchproc

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

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
