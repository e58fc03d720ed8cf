package vmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables the harness reads and sets.
const (
	// EnvGuest is set to "1" for the test binary or program running in
	// the guest.
	EnvGuest = "FASTPATH_VMTEST_GUEST"
	// EnvKernel names the kernel image package to boot instead of the one
	// Config or DefaultMetapackage names.
	EnvKernel = "FASTPATH_VMTEST_KERNEL"
	// EnvCache is the cache directory for kernel packages instead of
	// os.UserCacheDir()/fastpath-vmtest.
	EnvCache = "FASTPATH_VMTEST_CACHE"
)

// InGuest reports whether the test binary or program runs inside a guest
// the harness booted.
func InGuest() bool { return os.Getenv(EnvGuest) == "1" }

// Config says what to build, which kernel to boot, and what to run.
type Config struct {
	// Package is the package whose test binary runs in the guest, as go
	// test takes it; "" is the current directory (the calling test's).
	Package string
	// Program, when set, is a main package, as go build takes it, that
	// runs in the guest instead of a test binary: built with go build and
	// CGO_ENABLED=0, started with Args only (Run must be empty). Its
	// output and exit status come back in the Result as a test binary's
	// do.
	Program string
	// Kernel is the Debian kernel image package to boot, such as
	// "linux-image-6.1.0-57-amd64"; "" is what DefaultMetapackage depends
	// on. EnvKernel overrides both.
	Kernel string
	// Modules are loaded with insmod before the tests run, each after the
	// modules it depends on (found in its .modinfo). List what the kernel
	// would load on demand too, such as crypto algorithms: a bare
	// initramfs has no modprobe.
	Modules []string
	// Run is the -test.run pattern for the guest; "" runs every test.
	Run string
	// Args are more flags for the test binary, or the Program's arguments.
	Args []string
	// Files are more files for the guest, such as a dynamically linked
	// program and its libraries (see Executable). A File at a path the
	// harness uses itself (/init, /test, /program, /bin/busybox,
	// /modules/...) is an error, and so are two different Files at one
	// path; two that copy the same host file are one.
	Files []File
	// Timeout bounds the whole boot and run; 0 means 5 minutes. QEMU is
	// killed when it passes.
	Timeout time.Duration
	// MemoryMiB and CPUs size the guest; 0 means 1024 and 2.
	MemoryMiB, CPUs int
	// Output, when set, receives the test binary's or program's output
	// line by line as it arrives on the console, to show a long run's
	// progress; the Result has it all the same.
	Output io.Writer
}

// Result is what a guest run produced.
type Result struct {
	Kernel   string        // the kernel package booted
	Output   string        // the test binary's or program's output (stdout and stderr)
	Console  string        // everything the guest wrote to its console
	ExitCode int           // the test binary's or program's exit status
	Build    time.Duration // building the test binary or program
	Boot     time.Duration // from starting QEMU to the binary's start
	Total    time.Duration // everything, preparation included
}

// Passed reports whether the guest's tests passed (or the program exited
// with status 0).
func (r *Result) Passed() bool { return r.ExitCode == 0 }

// UnavailableError says why the guest cannot run on this machine: a tool or
// the kernel package is missing. RunTest skips on it outside CI.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string { return "vmtest: " + e.Reason }

func unavailable(format string, args ...any) error {
	return &UnavailableError{Reason: fmt.Sprintf(format, args...)}
}

// CacheDir returns the directory kernel packages are kept in: EnvCache, or
// fastpath-vmtest under os.UserCacheDir.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "fastpath-vmtest"), nil
}

// KernelPackage returns the kernel image package a run of cfg boots:
// EnvKernel, cfg.Kernel, or what DefaultMetapackage depends on.
func KernelPackage(cfg Config) (string, error) {
	if k := os.Getenv(EnvKernel); k != "" {
		return k, nil
	}
	if cfg.Kernel != "" {
		return cfg.Kernel, nil
	}
	return resolvePackage(DefaultMetapackage)
}

// Prepare downloads and unpacks the kernel package cfg boots into the cache
// and checks that its modules resolve, without booting it; it returns the
// package name. .ci/install-tools runs it (through cmd/vmtest-fetch) so a
// fresh machine's first test run does not download.
func Prepare(cfg Config) (string, error) {
	pkg, err := KernelPackage(cfg)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	k, err := fetchKernel(cache, pkg)
	if err != nil {
		return "", err
	}
	if _, err := k.moduleOrder(cfg.Modules); err != nil {
		return "", err
	}
	return pkg, nil
}

// Run builds cfg.Package's test binary (or cfg.Program), boots the kernel
// with it and cfg.Files in an initramfs, runs it, and returns what it
// printed and its exit status. An error means the run could not happen or
// did not finish (an *UnavailableError when a tool or the kernel package is
// missing); failing tests, or a program that failed, are a Result with a
// non-zero ExitCode.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	if cfg.Program != "" && cfg.Run != "" {
		return nil, errors.New("vmtest: Config.Run is for test binaries; a Program takes Args only")
	}
	extra, err := checkFiles(cfg.Files)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	for _, tool := range []string{qemuBinary, "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, unavailable("%s is not installed (.ci/install-tools installs it)", tool)
		}
	}
	busybox, _ := exec.LookPath("busybox")
	if err := checkStatic(busybox); err != nil {
		return nil, err
	}
	pkg, err := KernelPackage(cfg)
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	k, err := fetchKernel(cache, pkg)
	if err != nil {
		return nil, err
	}
	mods, err := k.moduleOrder(cfg.Modules)
	if err != nil {
		return nil, err
	}

	res := &Result{Kernel: pkg}
	buildStart := time.Now()
	guestBin, args := "test", []string{"-test.v"}
	if cfg.Run != "" {
		args = append(args, "-test.run="+cfg.Run)
	}
	var bin string
	if cfg.Program != "" {
		guestBin, args = "program", nil
		bin, err = buildBinary(ctx, buildProgram, cfg.Program)
	} else {
		bin, err = buildBinary(ctx, buildTest, cfg.Package)
	}
	if err != nil {
		return nil, err
	}
	args = append(args, cfg.Args...)
	res.Build = time.Since(buildStart)

	dir, err := os.MkdirTemp("", "vmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	nonce := make([]byte, 8)
	rand.Read(nonce)
	m := markers{begin: "VMTEST-BEGIN-" + hex.EncodeToString(nonce), exit: "VMTEST-EXIT-" + hex.EncodeToString(nonce)}

	files := []guestFile{
		{name: "bin/busybox", perm: 0o755, src: busybox},
		{name: guestBin, perm: 0o755, src: bin},
	}
	var guestMods []string
	for i, p := range mods {
		data, err := k.moduleData(p)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("modules/%02d-%s.ko", i, moduleName(p))
		files = append(files, guestFile{name: name, perm: 0o644, data: data})
		guestMods = append(guestMods, "/"+name)
	}
	files = append(files, extra...)
	files = append(files, guestFile{name: "init", perm: 0o755, data: []byte(initScript(m, guestMods, "/"+guestBin, args))})

	initrd := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		return nil, err
	}
	err = writeInitramfs(f, files)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	mem, cpus := cfg.MemoryMiB, cfg.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	console, bootAt, err := boot(ctx, k.vmlinux, initrd, mem, cpus, m, cfg.Output)
	res.Console = console
	if !bootAt.IsZero() {
		res.Boot = bootAt.Sub(buildStart.Add(res.Build))
	}
	res.Total = time.Since(start)
	if err != nil {
		return res, err
	}
	out, code, ok := m.parse(console)
	res.Output = out
	if !ok {
		return res, fmt.Errorf("vmtest: the guest stopped without an exit status; console:\n%s", console)
	}
	res.ExitCode = code
	return res, nil
}

// checkStatic makes sure the busybox found is a static binary: the
// initramfs carries no C library. Debian's busybox-static is; busybox is not.
func checkStatic(p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if bytes.Contains(b, []byte("/lib64/ld-linux")) || bytes.Contains(b, []byte("/lib/ld-linux")) {
		return unavailable("%s is dynamically linked; install busybox-static", p)
	}
	return nil
}

// markers delimit the test binary's output on the console. The random part
// keeps anything a test prints from being taken for them.
type markers struct{ begin, exit string }

// initScript is the guest's /init: mount what tests expect, put busybox's
// commands on the PATH, bring up lo, load the modules, run bin (the tests
// or the program) with args, print the exit status, power off.
func initScript(m markers, modules []string, bin string, args []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/busybox sh\n")
	b.WriteString("B=/bin/busybox\n")
	b.WriteString("$B mount -t proc proc /proc\n$B mount -t sysfs sys /sys\n$B mount -t devtmpfs dev /dev\n$B mount -t tmpfs tmp /tmp\n")
	// Links for busybox's applets (taskset, true, ...), where a File at the
	// same path does not stand already; Files in /usr/bin come first.
	b.WriteString("$B --install -s /bin\nexport PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin\n")
	b.WriteString("$B ip link set lo up || echo 'vmtest: ip link set lo up failed'\n")
	b.WriteString("fail=0\n")
	for _, p := range modules {
		fmt.Fprintf(&b, "$B insmod %s || { echo 'vmtest: insmod %s failed'; fail=1; }\n", p, p)
	}
	fmt.Fprintf(&b, "echo %s\n", m.begin)
	b.WriteString("if [ $fail = 0 ]; then\n")
	fmt.Fprintf(&b, "  cd /tmp && %s=1 HOME=/tmp TMPDIR=/tmp %s", EnvGuest, bin)
	for _, a := range args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString(" 2>&1\n  code=$?\nelse\n  code=125\nfi\n")
	fmt.Fprintf(&b, "echo\necho %s $code\n", m.exit)
	b.WriteString("$B poweroff -f\n")
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parse returns the test output between the markers and the exit status.
func (m markers) parse(console string) (out string, code int, ok bool) {
	console = strings.ReplaceAll(console, "\r\n", "\n")
	_, rest, found := strings.Cut(console, m.begin+"\n")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndex(rest, m.exit+" ")
	if i < 0 {
		return rest, 0, false
	}
	line, _, _ := strings.Cut(rest[i+len(m.exit)+1:], "\n")
	code, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return rest[:i], 0, false
	}
	return strings.TrimSuffix(rest[:i], "\n"), code, true
}

// Program names.
const qemuBinary = "qemu-system-x86_64"

// boot runs QEMU until the guest powers off, the context ends, or the console
// closes, and returns the console output and when the begin marker appeared.
func boot(ctx context.Context, vmlinux, initrd string, mem, cpus int, m markers, output io.Writer) (string, time.Time, error) {
	cmd := exec.CommandContext(ctx, qemuBinary,
		"-machine", "q35", "-cpu", "max", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", vmlinux, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1")
	cmd.WaitDelay = 5 * time.Second
	w := &consoleWriter{m: m, output: output}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	out, at := w.result()
	if ctx.Err() != nil {
		return out, at, fmt.Errorf("vmtest: the guest did not finish in time (%v); console:\n%s", context.Cause(ctx), out)
	}
	if err != nil {
		return out, at, fmt.Errorf("vmtest: %s: %v; console:\n%s", qemuBinary, err, out)
	}
	return out, at, nil
}

// consoleWriter collects the console, notes when the begin marker shows,
// and passes the lines between the markers on to output, if set.
type consoleWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	m      markers
	at     time.Time
	output io.Writer
	line   []byte // the console's last line, not yet complete
	state  int    // 0 before the begin marker, 1 between the markers, 2 after
}

func (w *consoleWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.at.IsZero() && bytes.Contains(w.buf.Bytes(), []byte(w.m.begin)) {
		w.at = time.Now()
	}
	if w.output == nil {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		l := bytes.TrimSuffix(w.line[:i], []byte("\r"))
		switch {
		case w.state == 0 && bytes.Contains(l, []byte(w.m.begin)):
			w.state = 1
		case w.state == 1 && bytes.HasPrefix(l, []byte(w.m.exit+" ")):
			w.state = 2
		case w.state == 1:
			// Progress only: a failing output does not stop the guest.
			w.output.Write(append(l, '\n'))
		}
		w.line = w.line[i+1:]
	}
	return len(p), nil
}

func (w *consoleWriter) result() (string, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.at
}

// buildKind says what buildBinary builds.
type buildKind string

const (
	buildTest    buildKind = "test"    // a test binary, by go test -c
	buildProgram buildKind = "program" // a main package, by go build
)

// builds caches binaries per kind and package for the life of the process,
// so go test -count=N builds once.
var builds sync.Map // kind, working directory and package -> *build

type build struct {
	once sync.Once
	path string
	err  error
}

// buildBinary builds a static binary of pkg: its test binary (go test -c)
// or the program (go build).
func buildBinary(ctx context.Context, kind buildKind, pkg string) (string, error) {
	if pkg == "" {
		pkg = "."
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	key := string(kind) + "\x00" + wd + "\x00" + pkg
	v, _ := builds.LoadOrStore(key, &build{})
	b := v.(*build)
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		dir, err := os.MkdirTemp("", "vmtest-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "guest."+string(kind))
		args := []string{"test", "-c", "-o", b.path, pkg}
		if kind == buildProgram {
			args = []string{"build", "-o", b.path, pkg}
		}
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("vmtest: go %s %s: %v: %s", args[0], pkg, err, bytes.TrimSpace(out))
		}
	})
	if b.err != nil {
		builds.Delete(key) // a canceled build may succeed next time
	}
	return b.path, b.err
}

// RunTest runs cfg in a guest as part of t: it logs the guest's output and
// timings, and fails t when the guest's tests fail or the run cannot finish.
// When the guest cannot run here (an *UnavailableError), it skips with the
// reason, or fails when the CI environment variable is set, since CI must
// run what it claims to.
func RunTest(t testing.TB, cfg Config) *Result {
	t.Helper()
	if InGuest() {
		t.Skip("vmtest: already in the guest")
	}
	res, err := Run(t.Context(), cfg)
	if ue, ok := errors.AsType[*UnavailableError](err); ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", ue)
		}
		t.Skip(ue.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmtest: %s: build %v, boot %v, total %v", res.Kernel, res.Build.Round(time.Millisecond),
		res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	if !res.Passed() {
		t.Fatalf("vmtest: the guest's tests failed (exit status %d); failed: %s\n%s", res.ExitCode,
			strings.Join(FailedTests(res.Output), " "), res.Output)
	}
	t.Log(res.Output)
	return res
}

// FailedTests returns the names of the tests go test's -test.v output
// reports as failed, in order.
func FailedTests(out string) []string {
	var failed []string
	for l := range strings.Lines(out) {
		l = strings.TrimSpace(l)
		if name, ok := strings.CutPrefix(l, "--- FAIL: "); ok {
			name, _, _ = strings.Cut(name, " ")
			failed = append(failed, name)
		}
	}
	return failed
}
