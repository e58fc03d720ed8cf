//go:build linux

package main

import (
	"errors"
	"flag"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/vmtest"
	"github.com/fastpath-go/fastpath/ktls"
)

// TestMain lets the test binary stand in for the command's Go servers,
// which it starts with -child.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		fs := flag.NewFlagSet("child", flag.ExitOnError)
		child := fs.String("child", "", "")
		file := fs.String("file", "", "")
		listen := fs.String("listen", "", "")
		certFile := fs.String("cert", "", "")
		keyFile := fs.String("key", "", "")
		fs.Parse(os.Args[1:])
		if err := serve(*child, *file, *listen, *certFile, *keyFile); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Small runs: a 4 MiB file downloaded twice, one round, one traced run.
const (
	testSize      = 4 << 20
	testDownloads = 2
)

// testConfig returns the configuration of a small run whose progress goes
// to t's output.
func testConfig(t *testing.T) config {
	return config{size: testSize, downloads: testDownloads, rounds: 1, straceRounds: 1,
		guestMemory: 1024, guestTimeout: 10 * time.Minute, progress: t.Output()}
}

// TestLocal runs the benchmark on this machine's kernel: the crypto/tls
// row always, the kernel TLS rows where the kernel has the tls ULP (and
// nginx is installed), skipped with the reason elsewhere.
func TestLocal(t *testing.T) {
	p, err := runLocal(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ktlsSkip := ""
	if r := ktls.Available(); r != ktls.InKernel {
		ktlsSkip = "this kernel has no kernel TLS (ktls.Available: " + string(r)
	}
	nginxSkip := ktlsSkip
	if _, err := exec.LookPath("nginx"); err != nil {
		nginxSkip = "nginx is not installed"
	}
	tx, _ := kernelTLSSockets()
	checkPlace(t, p, map[string]string{sCryptoTLS: "", sKTLS: ktlsSkip, sNginx: nginxSkip}, tx >= 0)
}

// TestGuest runs the benchmark in a QEMU guest booting Debian's kernel,
// where every stack runs (nginx when the host has it to copy).
func TestGuest(t *testing.T) {
	if vmtest.InGuest() {
		t.Skip("in the guest")
	}
	p, err := runGuest(testConfig(t))
	if ue, ok := errors.AsType[*vmtest.UnavailableError](err); ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", ue)
		}
		t.Skip(ue.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	if p.Where != whereGuest || !strings.HasPrefix(p.Kernel, "linux-image-") || !strings.HasPrefix(p.Emulation, "emulated by QEMU") {
		t.Errorf("place %q, kernel %q, emulation %q", p.Where, p.Kernel, p.Emulation)
	}
	nginxSkip := ""
	if _, err := exec.LookPath("nginx"); err != nil {
		nginxSkip = "nginx is not installed"
	}
	checkPlace(t, p, map[string]string{sCryptoTLS: "", sKTLS: "", sNginx: nginxSkip}, true)
}

// checkPlace checks the rows of a run: which ran, the bytes served (every
// one checked by the client), how the server's socket was encrypted, what
// the Go servers say, and the system calls that carried the file. skipped
// maps each stack to the start of the reason it must be skipped for, or
// "" when it must run; tlsStat says whether the kernel has
// /proc/net/tls_stat.
func checkPlace(t *testing.T, p *place, skipped map[string]string, tlsStat bool) {
	t.Helper()
	if len(p.Rows) != len(stacks) {
		t.Fatalf("%d rows, want %d", len(p.Rows), len(stacks))
	}
	for i, r := range p.Rows {
		t.Run(r.Stack, func(t *testing.T) {
			if r.Stack != stacks[i] {
				t.Fatalf("row %d is %s, want %s", i, r.Stack, stacks[i])
			}
			if want := skipped[r.Stack]; want != "" || r.Skipped != "" {
				if want == "" || !strings.HasPrefix(r.Skipped, want) {
					t.Errorf("skipped %q, want %q", r.Skipped, want)
				}
				return
			}
			if r.Served != testDownloads*testSize {
				t.Errorf("served %d bytes, want %d", r.Served, testDownloads*testSize)
			}
			if len(r.CPU) != 1 || r.CPU[0] <= 0 {
				t.Errorf("CPU samples %v, want one positive", r.CPU)
			}
			if !strings.HasPrefix(r.TLS, "TLS 1.3 TLS_") {
				t.Errorf("TLS %q, want TLS 1.3", r.TLS)
			}
			// Kernel TLS sockets during the downloads: none for crypto/tls;
			// both directions for fastpath; OpenSSL 3.0 hands the kernel the
			// transmit side only of a TLS 1.3 session.
			sockets := map[string][2]int64{sCryptoTLS: {0, 0}, sKTLS: {1, 1}, sNginx: {1, 0}}[r.Stack]
			wantTX, wantRX := sockets[0], sockets[1]
			if !tlsStat {
				wantTX, wantRX = -1, -1
			}
			if r.KernelTX != wantTX || r.KernelRX != wantRX {
				t.Errorf("kernel TLS sockets %d/%d, want %d/%d", r.KernelTX, r.KernelRX, wantTX, wantRX)
			}
			// The warm-up request and the downloads, on one connection.
			const requests = testDownloads + 1
			const bodies = testDownloads*testSize + 1
			const sent = testDownloads * (testSize - 512) // net/http writes the first 512 bytes itself
			switch r.Stack {
			case sCryptoTLS:
				if r.Child == nil || !maps.Equal(r.Child.Connections, map[string]int{"crypto/tls": requests}) || r.Child.SendfileBytes != -1 {
					t.Errorf("server's report %+v, want %d requests over crypto/tls", r.Child, requests)
				}
			case sKTLS:
				if r.Child == nil || !maps.Equal(r.Child.Connections, map[string]int{"kernel": requests}) ||
					r.Child.ResponseBytes != bodies || r.Child.SendfileBytes != sent {
					t.Errorf("server's report %+v, want %d requests over kernel TLS, %d response bytes, %d by sendfile", r.Child, requests, bodies, sent)
				}
			case sNginx:
				if r.Child != nil {
					t.Errorf("nginx has a report: %+v", r.Child)
				}
			}
			if p.StraceErr != "" {
				t.Logf("system calls not counted: %s", p.StraceErr)
				return
			}
			run, ok := r.median()
			if !ok || run.Downloads != testDownloads {
				t.Fatalf("traced runs %+v, want one of %d downloads", r.Traced, testDownloads)
			}
			calls := run.Calls
			switch r.Stack {
			case sCryptoTLS:
				// Every byte goes through the process: at least one write
				// per 16 KiB TLS record, and no sendfile.
				if w := calls["write"]; calls["sendfile"].Count != 0 || w.Count < testDownloads*testSize/(16<<10) || w.Sum < testDownloads*testSize {
					t.Errorf("sendfile %+v, write %+v; want no sendfile and a write per record", calls["sendfile"], w)
				}
			case sKTLS:
				if got := calls["sendfile"].Sum; got != sent {
					t.Errorf("sendfile sent %d bytes, want %d", got, sent)
				}
			case sNginx:
				if got := calls["sendfile"].Sum; got != testDownloads*testSize {
					t.Errorf("sendfile sent %d bytes, want %d", got, testDownloads*testSize)
				}
			}
		})
	}
	var out strings.Builder
	p.write(&out, testConfig(t))
	for _, s := range stacks {
		if !strings.Contains(out.String(), "| "+s+" |") {
			t.Errorf("the table has no row for %s:\n%s", s, out.String())
		}
	}
}

func TestTable(t *testing.T) {
	p := &place{Where: whereGuest, Kernel: "linux-image-6.1.0-57-amd64", Machine: "machine: QEMU TCG CPU version 2.5+, 2 cores, Linux 6.1.0-57-amd64, go1.26.8",
		Emulation: "emulated by QEMU 7.2.22 TCG (-cpu max, 2048 MiB) on AMD EPYC, 2 cores", Nginx: "1.22.1", Pinned: true,
		LoadStart: "2.50", LoadEnd: "3.10", Took: 200 * time.Second, Boot: 3300 * time.Millisecond,
		Rows: []*row{
			{Stack: sCryptoTLS, TLS: "TLS 1.3 TLS_AES_128_GCM_SHA256", Served: 1 << 30, KernelTX: 0, KernelRX: 0,
				CPU:    []time.Duration{90 * time.Second, 100 * time.Second, 80 * time.Second},
				Child:  &childReport{Connections: map[string]int{"crypto/tls": 2}, SendfileBytes: -1, ResponseBytes: -1},
				Traced: []tracedRun{{Downloads: 1, Calls: strace.Summary{"read": {Count: 32768, Sum: 1 << 30}, "write": {Count: 65538, Sum: 1 << 30}}}}},
			{Stack: sKTLS, TLS: "TLS 1.3 TLS_AES_128_GCM_SHA256", Served: 1 << 30, KernelTX: 1, KernelRX: 1,
				CPU:    []time.Duration{60 * time.Second, 40 * time.Second, 30 * time.Second}, // per round: 0.67x, 0.40x, 0.38x
				Child:  &childReport{Connections: map[string]int{"kernel": 2}, SendfileBytes: 1<<30 - 512, ResponseBytes: 1<<30 + 1},
				Traced: []tracedRun{{Downloads: 1, Calls: strace.Summary{"sendfile": {Count: 300, Sum: 1<<30 - 512}, "recvmsg": {Count: 2}, "read": {Count: 1}}}}},
			{Stack: sNginx, Skipped: "nginx is not installed (.ci/install-tools bench installs it)"},
		}}
	var b strings.Builder
	p.write(&b, config{size: 1 << 30, downloads: 1, rounds: 3, straceRounds: 1})
	want := `## guest: linux-image-6.1.0-57-amd64 under QEMU (emulated CPU)

machine: QEMU TCG CPU version 2.5+, 2 cores, Linux 6.1.0-57-amd64, go1.26.8, nginx 1.22.1; server pinned to CPU 0, client to CPU 1
the guest's CPU is emulated by QEMU 7.2.22 TCG (-cpu max, 2048 MiB) on AMD EPYC, 2 cores: its figures compare the rows of this run, they are not the host's
1 download(s) of a 1024 MiB file per round over loopback, each checked byte for byte; CPU: the server process, median of 3 interleaved rounds; system calls: strace -f, per download, median of 1 traced run(s) minus a traced start-up
took 3m20s (boot 3.3s); load average (1 min) of the machine running it: 2.50 at the start, 3.10 at the end

| server | TLS | server CPU per GiB (quartiles) | vs crypto/tls | I/O syscalls per download | of them | sendfile bytes per download | kernel TLS sockets (TX/RX) |
|---|---|---|---|---|---|---|---|
| net/http + crypto/tls | TLS 1.3 TLS_AES_128_GCM_SHA256 | 90,000 ms (80,000-100,000) | 1.00x | 98,306 | 65,538 write, 32,768 read | 0 | 0/0 |
| fastpath + ktls | TLS 1.3 TLS_AES_128_GCM_SHA256 | 40,000 ms (30,000-60,000) | 0.40x | 303 (1/324) | 300 sendfile, 2 recvmsg, 1 read | 1,073,741,312 | 1/1 |
| nginx + OpenSSL kTLS | skipped: nginx is not installed (.ci/install-tools bench installs it) | | | | | | |

fastpath + ktls: 0.40x crypto/tls's CPU per GiB (target <= 0.6x: met)
net/http + crypto/tls, last round: requests by connection: 2 crypto/tls
fastpath + ktls, last round: requests by connection: 2 kernel; fastpath recorded 1073741825 response bytes, 1073741312 of them by sendfile

`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestParseResults(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    int // places
		wantErr string
	}{
		{name: "among progress", out: "1s round 1/1: x\r\n" + resultPrefix + `[{"Where":"local","Rows":[{"Stack":"net/http + crypto/tls"}]}]` + "\r\nbye\n", want: 1},
		{name: "the last of two", out: resultPrefix + `[{"Where":"local","Rows":[{"Stack":"x"}]}]` + "\n1s strace 1/1: x\n" +
			resultPrefix + `[{"Where":"local","Rows":[{"Stack":"net/http + crypto/tls"}]}]` + "\n", want: 1},
		{name: "none", out: "1s round 1/1: x\n", wantErr: "no result line in the output"},
		{name: "cut short", out: resultPrefix + `[{"Where":`, wantErr: "the result line: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			places, err := parseResults(tt.out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("parseResults = %v, %v; want the error %q", places, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(places) != tt.want || places[0].Rows[0].Stack != sCryptoTLS {
				t.Errorf("parseResults = %+v, %v", places, err)
			}
		})
	}
}

func TestParseTLSStat(t *testing.T) {
	tests := []struct {
		name   string
		stat   string
		tx, rx int64
	}{
		{name: "kernel 6.1", stat: "TlsCurrTxSw                     \t1\nTlsCurrRxSw                     \t0\nTlsCurrTxDevice                 \t0\nTlsTxSw                         \t3\n", tx: 1, rx: 0},
		{name: "empty", stat: "", tx: -1, rx: -1},
		{name: "garbled", stat: "TlsCurrTxSw x\nTlsCurrRxSw 2\n", tx: -1, rx: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tx, rx := parseTLSStat([]byte(tt.stat)); tx != tt.tx || rx != tt.rx {
				t.Errorf("parseTLSStat = %d, %d; want %d, %d", tx, rx, tt.tx, tt.rx)
			}
		})
	}
}

func TestLineFilter(t *testing.T) {
	var b strings.Builder
	f := &lineFilter{w: &b, prefix: "guest: ", drop: resultPrefix}
	for _, l := range []string{"1s round 1/1: x\n", resultPrefix + "[{}]\n", "\n", "done\n"} {
		f.Write([]byte(l))
	}
	if want := "guest: 1s round 1/1: x\nguest: done\n"; b.String() != want {
		t.Errorf("filtered %q, want %q", b.String(), want)
	}
	if want := resultPrefix + "[{}]\n"; f.last() != want {
		t.Errorf("last result line %q, want %q", f.last(), want)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config
		wantErr string
	}{
		{name: "both", cfg: config{where: []string{"local", "guest"}, size: 1, downloads: 1, rounds: 1}},
		{name: "unknown place", cfg: config{where: []string{"host"}, size: 1, downloads: 1, rounds: 1}, wantErr: `-where "host": want local, guest or both`},
		{name: "no rounds", cfg: config{where: []string{"local"}, size: 1, downloads: 1}, wantErr: "-size, -downloads and -rounds must be positive, -strace-rounds not negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.check()
			if got := errString(err); got != tt.wantErr {
				t.Errorf("check = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
