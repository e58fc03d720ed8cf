package vmtest

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var wantRelease = flag.String("vmtest.release", "", "in the guest: the kernel release TestGuestEnvironment expects")

// guestModules are what TestBoot loads: tls, which has no symbol
// dependencies, and gcm, whose chain exercises the ordering.
var guestModules = []string{"tls", "ghash-generic", "gcm"}

// TestBoot boots the default kernel with this package's test binary and runs
// TestGuestEnvironment there: the harness's own end-to-end check.
func TestBoot(t *testing.T) {
	if InGuest() {
		t.Skip("in the guest")
	}
	pkg, err := KernelPackage(Config{})
	if err != nil {
		skipUnavailable(t, err)
	}
	release := strings.TrimPrefix(pkg, "linux-image-")
	res := RunTest(t, Config{Modules: guestModules, Run: "^TestGuestEnvironment$",
		Args: []string{"-vmtest.release=" + release}})
	if !strings.Contains(res.Output, "--- PASS: TestGuestEnvironment") {
		t.Errorf("the guest's output does not show TestGuestEnvironment passing:\n%s", res.Output)
	}
}

func skipUnavailable(t *testing.T, err error) {
	t.Helper()
	if _, ok := err.(*UnavailableError); ok && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// TestGuestEnvironment runs in the guest only: what the harness promises a
// guest test.
func TestGuestEnvironment(t *testing.T) {
	if !InGuest() {
		t.Skip("runs in the guest (TestBoot)")
	}
	t.Run("kernel", func(t *testing.T) {
		b, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != *wantRelease {
			t.Errorf("kernel release %q, want %q", got, *wantRelease)
		}
	})
	t.Run("modules", func(t *testing.T) {
		b, err := os.ReadFile("/proc/modules")
		if err != nil {
			t.Fatal(err)
		}
		var loaded []string
		for l := range strings.Lines(string(b)) {
			loaded = append(loaded, strings.Fields(l)[0])
		}
		for _, m := range []string{"tls", "gcm", "ghash_generic", "gf128mul"} {
			if !slices.Contains(loaded, m) {
				t.Errorf("module %s not loaded; loaded: %v", m, loaded)
			}
		}
	})
	t.Run("loopback", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "hello" {
			t.Errorf("read %q, %v; want hello", b, err)
		}
	})
	t.Run("temp dir", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(t.TempDir(), "f"), []byte("x"), 0o644); err != nil {
			t.Error(err)
		}
	})
}

// readCPIO parses a newc archive back, the way the kernel reads it.
func readCPIO(t *testing.T, b []byte) map[string]string {
	t.Helper()
	entries := map[string]string{}
	align := func(n int) int { return (n + 3) &^ 3 }
	off := 0
	for {
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off = align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return entries
		}
		entries[name] = fmt.Sprintf("%o %d:%d %s", mode, rmaj, rmin, b[off:off+size])
		off = align(off + size)
	}
}

func TestInitramfs(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("abcde"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := writeInitramfs(&buf, []guestFile{
		{name: "init", perm: 0o755, data: []byte("#!/bin/sh\n")},
		{name: "a/b/c.ko", perm: 0o644, src: src},
		{name: "odd", perm: 0o600, data: []byte("1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, buf.Bytes())
	want := map[string]string{
		"dev":         "40755 0:0 ",
		"proc":        "40755 0:0 ",
		"sys":         "40755 0:0 ",
		"tmp":         "40755 0:0 ",
		"dev/console": "20600 5:1 ",
		"init":        "100755 0:0 #!/bin/sh\n",
		"a":           "40755 0:0 ",
		"a/b":         "40755 0:0 ",
		"a/b/c.ko":    "100644 0:0 abcde",
		"odd":         "100600 0:0 1",
	}
	if len(got) != len(want) {
		t.Errorf("got %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
}

func TestMarkersParse(t *testing.T) {
	m := markers{begin: "VMTEST-BEGIN-" + hex.EncodeToString([]byte{1}), exit: "VMTEST-EXIT-01"}
	tests := []struct {
		name     string
		console  string
		wantOut  string
		wantCode int
		wantOK   bool
	}{
		{name: "pass", console: "boot noise\r\n" + m.begin + "\r\n=== RUN   TestA\r\n--- PASS: TestA\r\nPASS\r\n\r\n" + m.exit + " 0\r\n[ 1.2] reboot: Power down\r\n",
			wantOut: "=== RUN   TestA\n--- PASS: TestA\nPASS\n", wantCode: 0, wantOK: true},
		{name: "fail", console: m.begin + "\n--- FAIL: TestB (0.00s)\nFAIL\n\n" + m.exit + " 1\n",
			wantOut: "--- FAIL: TestB (0.00s)\nFAIL\n", wantCode: 1, wantOK: true},
		{name: "test prints a marker-like line", console: m.begin + "\nVMTEST-EXIT-02 7\n\n" + m.exit + " 0\n",
			wantOut: "VMTEST-EXIT-02 7\n", wantCode: 0, wantOK: true},
		{name: "no begin", console: "Kernel panic\n"},
		{name: "no exit", console: m.begin + "\n=== RUN TestC\n", wantOut: "=== RUN TestC\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, ok := m.parse(tt.console)
			if out != tt.wantOut || code != tt.wantCode || ok != tt.wantOK {
				t.Errorf("parse = %q, %d, %v; want %q, %d, %v", out, code, ok, tt.wantOut, tt.wantCode, tt.wantOK)
			}
		})
	}
}

func TestFailedTests(t *testing.T) {
	out := "=== RUN   TestA\n--- FAIL: TestA (0.01s)\n    --- FAIL: TestA/sub (0.00s)\n--- PASS: TestB (0.00s)\nFAIL\n"
	if got, want := FailedTests(out), []string{"TestA", "TestA/sub"}; !slices.Equal(got, want) {
		t.Errorf("FailedTests = %v, want %v", got, want)
	}
}

func TestInitScript(t *testing.T) {
	s := initScript(markers{begin: "B", exit: "E"}, []string{"/modules/00-a.ko"}, []string{"-test.run=^TestX$", "-x=it's"})
	for _, want := range []string{
		"$B ip link set lo up",
		"$B insmod /modules/00-a.ko ||",
		"echo B\n",
		EnvGuest + "=1 HOME=/tmp TMPDIR=/tmp /test '-test.run=^TestX$' '-x=it'\\''s' 2>&1",
		"echo E $code\n",
		"$B poweroff -f\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
}

// TestModuleOrder resolves real module dependencies from the default kernel
// package's .modinfo sections.
func TestModuleOrder(t *testing.T) {
	if InGuest() {
		t.Skip("in the guest")
	}
	pkg, err := Prepare(Config{})
	if err != nil {
		skipUnavailable(t, err)
	}
	cache, _ := CacheDir()
	k, err := fetchKernel(cache, pkg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		modules []string
		want    []string
		wantErr bool
	}{
		{name: "dependencies first", modules: []string{"ghash-clmulni-intel", "aesni_intel"},
			want: []string{"cryptd", "ghash_clmulni_intel", "crypto_simd", "aesni_intel"}},
		{name: "each once", modules: []string{"gcm", "ghash-generic", "gf128mul", "gcm"},
			want: []string{"gcm", "gf128mul", "ghash_generic"}},
		{name: "missing", modules: []string{"no-such-module"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths, err := k.moduleOrder(tt.modules)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("moduleOrder = %v, want an error", paths)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range paths {
				got = append(got, moduleName(p))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("order %v, want %v", got, tt.want)
			}
		})
	}
}
