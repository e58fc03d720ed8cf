package vmtest

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	s := initScript(markers{begin: "B", exit: "E"}, []string{"/modules/00-a.ko"}, "/test", []string{"-test.run=^TestX$", "-x=it's"})
	for _, want := range []string{
		"$B --install -s /bin\nexport PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin\n",
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

// TestProgram boots the default kernel with testdata/program and Files: a
// dynamically linked host program with its libraries, and a data file.
func TestProgram(t *testing.T) {
	if InGuest() {
		t.Skip("in the guest")
	}
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls to run in the guest:", err)
	}
	files, err := Executable(ls)
	if err != nil {
		skipUnavailable(t, err)
	}
	version, err := exec.Command(ls, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	firstLine, _, _ := strings.Cut(string(version), "\n")
	files = append(files, File{Path: "/etc/vmtest-data", Data: []byte("hello, guest")})
	var output bytes.Buffer
	res, err := Run(t.Context(), Config{Program: "./testdata/program", Files: files,
		Args: []string{"-file=/etc/vmtest-data", "-run=" + ls, "-exit=3", "a b", "c"}, Output: &output})
	if err != nil {
		skipUnavailable(t, err)
	}
	t.Logf("vmtest: %s: build %v, boot %v, total %v", res.Kernel, res.Build.Round(time.Millisecond),
		res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	want := "args: a b c\n" +
		"guest: 1\n" +
		"file: \"hello, guest\" <nil>\n" +
		"run: " + firstLine + " <nil>\n" +
		"taskset: /bin/taskset <nil>\n"
	if res.Output != want || res.ExitCode != 3 {
		t.Errorf("output %q, exit status %d; want %q, 3\nconsole:\n%s", res.Output, res.ExitCode, want, res.Console)
	}
	// The output ends with the empty line /init writes before the exit
	// marker, which the Result leaves out.
	if got := output.String(); got != res.Output+"\n" {
		t.Errorf("Config.Output received %q, want %q", got, res.Output+"\n")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "run with a program", cfg: Config{Program: "./testdata/program", Run: "^TestX$"},
			want: "vmtest: Config.Run is for test binaries; a Program takes Args only"},
		{name: "relative path", cfg: Config{Files: []File{{Path: "etc/x"}}},
			want: `vmtest: File path "etc/x" is not an absolute, clean file path`},
		{name: "unclean path", cfg: Config{Files: []File{{Path: "/etc/../x"}}},
			want: `vmtest: File path "/etc/../x" is not an absolute, clean file path`},
		{name: "root", cfg: Config{Files: []File{{Path: "/"}}},
			want: `vmtest: File path "/" is not an absolute, clean file path`},
		{name: "the harness's init", cfg: Config{Files: []File{{Path: "/init"}}},
			want: "vmtest: File path /init is the harness's own"},
		{name: "the program", cfg: Config{Files: []File{{Path: "/program"}}},
			want: "vmtest: File path /program is the harness's own"},
		{name: "under /tmp", cfg: Config{Files: []File{{Path: "/tmp/data"}}},
			want: "vmtest: File path /tmp/data is under /tmp, which the guest mounts over or the harness fills"},
		{name: "under /modules", cfg: Config{Files: []File{{Path: "/modules/x.ko"}}},
			want: "vmtest: File path /modules/x.ko is under /modules, which the guest mounts over or the harness fills"},
		{name: "twice", cfg: Config{Files: []File{{Path: "/etc/x", Data: []byte("a")}, {Path: "/etc/x", Data: []byte("a")}}},
			want: "vmtest: two different Files at /etc/x"},
		{name: "two sources", cfg: Config{Files: []File{{Path: "/lib/a.so", Source: "/lib/a.so"}, {Path: "/lib/a.so", Source: "/lib/b.so"}}},
			want: "vmtest: two different Files at /lib/a.so"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(t.Context(), tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Run = %v, %v; want the error %q", res, err, tt.want)
			}
		})
	}
}

func TestCheckFiles(t *testing.T) {
	got, err := checkFiles([]File{
		{Path: "/etc/passwd", Data: []byte("root:x:0:0::/:/bin/sh\n")},
		{Path: "/usr/sbin/nginx", Mode: 0o755, Source: "/usr/sbin/nginx"},
		{Path: "/tmpfile", Mode: fs.ModeDir | 0o700},
		{Path: "/usr/sbin/nginx", Mode: 0o755, Source: "/usr/sbin/nginx"}, // a library two programs share
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []guestFile{
		{name: "etc/passwd", perm: 0o644, data: []byte("root:x:0:0::/:/bin/sh\n")},
		{name: "usr/sbin/nginx", perm: 0o755, src: "/usr/sbin/nginx"},
		{name: "tmpfile", perm: 0o700},
	}
	if len(got) != len(want) {
		t.Fatalf("checkFiles = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].perm != want[i].perm || got[i].src != want[i].src || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("file %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []string
		wantErr string
	}{
		{name: "dynamic", out: "\tlinux-vdso.so.1 (0x00007ffd5d9f2000)\n" +
			"\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f4c38163000)\n" +
			"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f4c37a1e000)\n" +
			"\t/lib64/ld-linux-x86-64.so.2 (0x00007f4c38449000)\n",
			want: []string{"/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}},
		{name: "old vdso line", out: "\tlinux-vdso.so.1 =>  (0x00007ffd5d9f2000)\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n",
			want: []string{"/lib/libc.so.6"}},
		{name: "missing library", out: "\tlibgone.so.1 => not found\n", wantErr: "library libgone.so.1 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLdd([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("parseLdd = %v, %v; want the error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("parseLdd = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestExecutable lists a host program's files and checks that they hold
// its ELF interpreter and exist; a static program is itself alone.
func TestExecutable(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls:", err)
	}
	ls, _ = filepath.Abs(ls)
	files, err := Executable(ls)
	if err != nil {
		skipUnavailable(t, err)
	}
	if f := files[0]; f.Path != ls || f.Mode != 0o755 || f.Source != ls || f.Data != nil {
		t.Errorf("first file %+v, want the program", files[0])
	}
	f, err := elf.Open(ls)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	var paths []string
	for _, file := range files {
		paths = append(paths, file.Path)
		if _, err := os.Stat(file.Source); err != nil || file.Source != file.Path {
			t.Errorf("%+v: %v", file, err)
		}
	}
	if interp != "" && !slices.Contains(paths, interp) {
		t.Errorf("files %q lack the interpreter %s", paths, interp)
	}

	static := filepath.Join(t.TempDir(), "static")
	cmd := exec.Command("go", "build", "-o", static, "./testdata/program")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	files, err = Executable(static)
	if err != nil || len(files) != 1 || files[0].Path != static {
		t.Errorf("Executable(static) = %+v, %v; want the program alone", files, err)
	}
}

// TestConsoleOutput feeds the console in pieces that split lines and
// markers, and checks what Config.Output receives.
func TestConsoleOutput(t *testing.T) {
	m := markers{begin: "VMTEST-BEGIN-0a", exit: "VMTEST-EXIT-0a"}
	console := "\x1b[2JSeaBIOS\r\nBooting\r\n" + m.begin + "\r\nround 1\r\nround 2: VMTEST-EXIT-0a inside\r\n\r\n" + m.exit + " 0\r\n[ 9.1] reboot: Power down\r\n"
	tests := []struct {
		name  string
		piece int // bytes per Write
	}{
		{name: "whole", piece: len(console)},
		{name: "one byte at a time", piece: 1},
		{name: "seven bytes at a time", piece: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &consoleWriter{m: m, output: &out}
			for i := 0; i < len(console); i += tt.piece {
				w.Write([]byte(console[i:min(i+tt.piece, len(console))]))
			}
			if want := "round 1\nround 2: VMTEST-EXIT-0a inside\n\n"; out.String() != want {
				t.Errorf("output %q, want %q", out.String(), want)
			}
			if got, _ := w.result(); got != console {
				t.Errorf("console %q, want %q", got, console)
			}
		})
	}
}
