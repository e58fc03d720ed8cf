package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOTLPWanted(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{name: "nothing set", want: false},
		{name: "exporter named", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, want: true},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: true},
		{name: "signal endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, want: true},
		{name: "other signal's endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
				t.Setenv(k, tt.env[k])
			}
			if got := otlpWanted("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); got != tt.want {
				t.Errorf("otlpWanted = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8080/files/a.txt", "'http://127.0.0.1:8080/files/a.txt'"},
		{"$(touch x)", "'$(touch x)'"},
		{"a'b", `'a'\''b'`},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestBanner checks the banner for hostile and plain file names, with and
// without listings, and the download it suggests: the smallest file larger
// than 512 bytes, with the sendfile bytes its log line will show. It runs
// each printed curl command's URL through a real shell: it must come out as
// the one argument printed, running nothing.
func TestBanner(t *testing.T) {
	const (
		base    = "http://127.0.0.1:8080"
		metrics = "http://127.0.0.1:9464/metrics"
		curl    = "  curl -o /dev/null -w '%{http_code} %{size_download}\\n' "
		small   = "try a download of a file larger than 512 bytes (net/http writes the first 512 bytes of a body itself, so a smaller one shows fastpath.response.sendfile.size 0):"
	)
	shows := func(n int) string {
		return fmt.Sprintf("try a download; its log line shows fastpath.response.sendfile.size %d, all but the first 512 bytes, which net/http writes itself:", n)
	}
	tests := []struct {
		name    string
		files   map[string]int // name: size
		listing bool
		files1  string // the files line
		try     string // the line before the curl command
		url     string // the URL in the curl command, unquoted
	}{
		{
			name: "smallest past 512 bytes", files: map[string]int{"readme.txt": 100, "big.bin": 4096, "mid.bin": 2000},
			files1: "  files:   " + base + "/files/mid.bin (directory listings are off; -list turns them on)",
			try:    shows(1488), url: base + "/files/mid.bin",
		},
		{
			name: "512 bytes is too few", files: map[string]int{"a.bin": 512, "b.bin": 513},
			files1: "  files:   " + base + "/files/b.bin (directory listings are off; -list turns them on)",
			try:    shows(1), url: base + "/files/b.bin",
		},
		{
			name: "only small files", files: map[string]int{"b.txt": 5, "a.txt": 512},
			files1: "  files:   " + base + "/files/a.txt (directory listings are off; -list turns them on)",
			try:    small, url: base + "/files/a.txt",
		},
		{
			name: "listing", files: map[string]int{"readme.txt": 600}, listing: true,
			files1: "  files:   " + base + "/files/",
			try:    shows(88), url: base + "/files/readme.txt",
		},
		{
			name: "command substitution", files: map[string]int{"$(touch x)": 1000},
			files1: "  files:   " + base + "/files/$%28touch%20x%29 (directory listings are off; -list turns them on)",
			try:    shows(488), url: base + "/files/$%28touch%20x%29",
		},
		{
			name: "quote and backquote", files: map[string]int{"a'`touch x`'b": 1},
			files1: "  files:   " + base + "/files/a%27%60touch%20x%60%27b (directory listings are off; -list turns them on)",
			try:    small, url: base + "/files/a%27%60touch%20x%60%27b",
		},
		{
			name: "hidden, backslash and newline skipped", files: map[string]int{".env": 1000, "a\\b": 1000, "a\nb": 1000},
			files1: "  files:   " + base + "/files/NAME (the directory has no file to show; -list turns listings on)",
			try:    small, url: base + "/files/FILE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			for f, size := range tt.files {
				if err := os.WriteFile(filepath.Join(root, f), make([]byte, size), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var b strings.Builder
			banner(&b, base, metrics, root, tt.listing, "")
			want := strings.Join([]string{
				"fastpath: serving " + root + " on " + base + " (-addr picks another address)",
				tt.files1,
				"  metrics: " + metrics,
				"  health:  " + base + "/healthz",
				tt.try,
				curl + shellQuote(tt.url),
				"",
			}, "\n")
			if b.String() != want {
				t.Fatalf("banner:\n%s\nwant:\n%s", b.String(), want)
			}

			// The shell must hand curl the URL as one argument, and run
			// nothing: printf stands in for curl, in the directory the
			// hostile names would create x in.
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			args := strings.TrimPrefix(lines[len(lines)-1], curl)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", "printf '%s\\n' "+args)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("sh: %v: %s", err, out)
			}
			if string(out) != tt.url+"\n" {
				t.Errorf("the shell read the command's URL as %q, want %q", out, tt.url+"\n")
			}
			if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
				t.Error("running the printed command created x")
			}
		})
	}
}

// TestBannerHTTPS checks the banner of a server with -tls-cert: https URLs,
// and a curl that trusts a self-signed certificate with --cacert, quoted.
func TestBannerHTTPS(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.bin"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	banner(&b, "https://127.0.0.1:8443", "https://127.0.0.1:8443/metrics", root, false, "--cacert "+shellQuote("/etc/my cert.pem")+" ")
	for _, want := range []string{
		"fastpath: serving " + root + " on https://127.0.0.1:8443 (-addr picks another address)\n",
		"  curl --cacert '/etc/my cert.pem' -o /dev/null -w '%{http_code} %{size_download}\\n' 'https://127.0.0.1:8443/files/a.bin'\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner:\n%s\nlacks:\n%s", b.String(), want)
		}
	}
}
