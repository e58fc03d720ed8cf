//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/ktls"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// bench holds what one local run needs.
type bench struct {
	cfg      config
	dir      string // configurations, certificate, traces
	file     string // the file served
	self     string // this program, for the Go servers
	certFile string
	keyFile  string
	roots    *x509.CertPool
	pin      bool
}

// runLocal measures every stack this machine's kernel can run.
func runLocal(cfg config) (*place, error) {
	start := time.Now()
	p := &place{Where: whereLocal, LoadStart: loadAverage()}
	dir, files, err := benchproc.WorkDir("tlsbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b := &bench{cfg: cfg, dir: dir, file: filepath.Join(files, fileName)}
	if err := benchproc.WriteFile(b.file, cfg.size); err != nil {
		return nil, err
	}
	// Warm the page cache, so every server reads the file from memory.
	if err := benchproc.Warm(b.file); err != nil {
		return nil, err
	}
	if b.certFile, b.keyFile, b.roots, err = benchproc.Certificate(dir); err != nil {
		return nil, err
	}
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	b.pin = benchproc.PinClient(cfg.progress, "tlsbench")
	p.Pinned = b.pin
	if err := strace.Check(); err != nil {
		p.StraceErr = err.Error()
	}

	skip := map[string]string{}
	if r := ktls.Available(); r != ktls.InKernel {
		why := fmt.Sprintf("this kernel has no kernel TLS (ktls.Available: %s", r)
		if ulp, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_ulp"); err == nil {
			why += fmt.Sprintf("; tcp_available_ulp: %q", strings.TrimSpace(string(ulp)))
		}
		why += ")"
		skip[sKTLS], skip[sNginx] = why, why
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		skip[sNginx] = "nginx is not installed (.ci/install-tools bench installs it)"
	} else {
		p.Nginx = benchproc.NginxVersion()
	}
	for _, s := range stacks {
		p.Rows = append(p.Rows, &row{Stack: s, Skipped: skip[s]})
		if skip[s] != "" {
			fmt.Fprintf(cfg.progress, "tlsbench: skipping %s: %s\n", s, skip[s])
		}
	}
	active := func(round int) []*row {
		return slices.DeleteFunc(benchproc.Rotated(p.Rows, round), func(r *row) bool { return r.Skipped != "" })
	}
	// Each round starts with the next stack, so none always runs first.
	for round := range cfg.rounds {
		for _, r := range active(round) {
			fmt.Fprintf(cfg.progress, "%s round %d/%d: %s\n", since(start), round+1, cfg.rounds, r.Stack)
			m, err := b.measure(r.Stack, cfg.downloads, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Stack, err)
			}
			r.CPU = append(r.CPU, m.cpu)
			r.Served, r.TLS, r.KernelTX, r.KernelRX, r.Child = m.served, m.tls, m.tx, m.rx, m.child
		}
	}
	if cfg.measured != nil && p.StraceErr == "" && cfg.straceRounds > 0 {
		early := *p
		early.StraceErr = "the run ended before strace finished"
		early.Machine, early.LoadEnd, early.Took = benchproc.Machine(), loadAverage(), time.Since(start)
		cfg.measured(&early)
	}
	for round := range cfg.straceRounds {
		if p.StraceErr != "" {
			break
		}
		for _, r := range active(round) {
			fmt.Fprintf(cfg.progress, "%s strace %d/%d: %s\n", since(start), round+1, cfg.straceRounds, r.Stack)
			idle, err := b.traced(r.Stack, 0)
			if err != nil {
				return nil, fmt.Errorf("%s under strace: %w", r.Stack, err)
			}
			full, err := b.traced(r.Stack, cfg.downloads)
			if err != nil {
				return nil, fmt.Errorf("%s under strace: %w", r.Stack, err)
			}
			r.Traced = append(r.Traced, tracedRun{Calls: subtract(full, idle), Downloads: cfg.downloads})
		}
	}
	p.Machine = benchproc.Machine()
	p.LoadEnd = loadAverage()
	p.Took = time.Since(start)
	return p, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// traced runs a server under strace for downloads downloads (after the
// warm-up request every run makes) and returns what the trace counted.
func (b *bench) traced(stack string, downloads int) (strace.Summary, error) {
	trace := filepath.Join(b.dir, "strace.out")
	defer os.Remove(trace)
	if _, err := b.measure(stack, downloads, trace); err != nil {
		return nil, err
	}
	return strace.ParseFile(trace)
}

// subtract returns a minus b, call by call.
func subtract(a, b strace.Summary) strace.Summary {
	out := strace.Summary{}
	for name, c := range a {
		d := b[name]
		out[name] = strace.Calls{Count: c.Count - d.Count, Errors: c.Errors - d.Errors, Sum: c.Sum - d.Sum}
	}
	for name, d := range b {
		if _, ok := a[name]; !ok {
			out[name] = strace.Calls{Count: -d.Count, Errors: -d.Errors, Sum: -d.Sum}
		}
	}
	return out
}

// measurement is one server run.
type measurement struct {
	cpu    time.Duration // the server's, over the downloads
	served int64         // body bytes the client received and checked
	tls    string        // the version and cipher suite negotiated
	tx, rx int64         // kernel TLS sockets open during the downloads
	child  *childReport  // the Go servers' own report
}

// measure starts a server (under strace when trace is set), makes one
// small request on a new HTTPS connection so that the handshake is not
// measured, then downloads the file downloads times on that connection,
// checking every body byte for byte, and returns the server process's CPU
// time over the downloads.
func (b *bench) measure(stack string, downloads int, trace string) (measurement, error) {
	var m measurement
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return m, err
	}
	var argv []string
	if stack == sNginx {
		argv, err = benchproc.NginxCommand(b.dir, "nginx", benchproc.NginxTLSFiles(addr, filepath.Dir(b.file), b.certFile, b.keyFile,
			nginxTLSDirectives...))
		if err != nil {
			return m, err
		}
	} else {
		argv = []string{b.self, "-child", stack, "-file", b.file, "-listen", addr, "-cert", b.certFile, "-key", b.keyFile}
	}
	if b.pin {
		// The server runs on CPU 0 and this process, the client, on CPU 1,
		// so the two do not trade places mid-measurement.
		argv = benchproc.OnCPU(0, argv...)
	}
	var cmd *exec.Cmd
	if trace != "" {
		cmd = strace.Command(ctx, trace, ioSyscalls, argv[0], argv[1:]...)
	} else {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	cmd.Stderr = os.Stderr
	var report bytes.Buffer
	cmd.Stdout = &report
	// The Go servers stop when their standard input closes, nginx on
	// SIGTERM.
	srv, err := benchproc.StartServer(cmd, addr, stack == sNginx, trace != "")
	defer srv.Stop()
	if err != nil {
		return m, err
	}
	pid := srv.Pid
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: b.roots, MinVersion: tls.VersionTLS13},
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "https://" + addr + "/" + fileName
	if m.tls, err = warmUp(client, url); err != nil {
		return m, err
	}
	before, err := benchproc.ProcCPU(pid)
	if err != nil {
		return m, err
	}
	for range downloads {
		n, err := download(client, url, b.cfg.size)
		m.served += n
		if err != nil {
			return m, err
		}
	}
	after, err := benchproc.ProcCPU(pid)
	if err != nil {
		return m, err
	}
	m.cpu = after - before
	// The connection is still open: the kernel's count of TLS sockets
	// says whether the server's end is one.
	m.tx, m.rx = kernelTLSSockets()
	tr.CloseIdleConnections()
	if err := srv.Stop(); err != nil {
		return m, fmt.Errorf("server: %w", err)
	}
	if stack != sNginx {
		m.child = new(childReport)
		if err := json.Unmarshal(report.Bytes(), m.child); err != nil {
			return m, fmt.Errorf("server's report %q: %w", report.String(), err)
		}
	}
	return m, nil
}

// warmUp asks for the file's first byte, which sets up the connection the
// downloads reuse, and returns the TLS version and cipher suite.
func warmUp(client *http.Client, url string) (string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, []byte{0}) {
		return "", fmt.Errorf("warm-up request: status %d, body %q, %v", resp.StatusCode, body, err)
	}
	if resp.TLS == nil {
		return "", errors.New("warm-up request: not over TLS")
	}
	return tls.VersionName(resp.TLS.Version) + " " + tls.CipherSuiteName(resp.TLS.CipherSuite), nil
}

// download gets the whole file and checks it byte for byte.
func download(client *http.Client, url string, size int64) (int64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		return 0, fmt.Errorf("download: status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, size)
	}
	n, err := benchproc.VerifyFile(resp.Body)
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, want %d", n, size)
	}
	if err != nil {
		return n, fmt.Errorf("download: %w", err)
	}
	return n, nil
}

// kernelTLSSockets returns the kernel TLS sockets open now, with their
// transmit and receive sides in software kernel TLS (TlsCurrTxSw and
// TlsCurrRxSw of /proc/net/tls_stat), or -1, -1 where the file is missing
// (no tls module).
func kernelTLSSockets() (tx, rx int64) {
	b, err := os.ReadFile("/proc/net/tls_stat")
	if err != nil {
		return -1, -1
	}
	return parseTLSStat(b)
}

// parseTLSStat reads TlsCurrTxSw and TlsCurrRxSw from lines of a name and
// a number; a missing one is -1.
func parseTLSStat(b []byte) (tx, rx int64) {
	tx, rx = -1, -1
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "TlsCurrTxSw":
			tx = n
		case "TlsCurrRxSw":
			rx = n
		}
	}
	return tx, rx
}

// loadAverage returns the machine's load average over the last minute, as
// /proc/loadavg says, or "" if it cannot be read.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
