package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/strace"
)

// childEnv carries a childConfig (as JSON) to a re-executed test binary,
// which then serves one row instead of running the tests.
const childEnv = "FASTPATH_COMPAT_CHILD"

// childConfig is the server a child process runs.
type childConfig struct {
	Row      string // the row's id
	Path     string // the file to serve
	Requests int    // how many requests to report on
}

// runChild serves one row on 127.0.0.1 until its standard input closes: it
// prints "ADDR host:port" first, then one "OBS {json}" line for each of the
// requests it served.
func runChild(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	rw := rowByID(cfg.Row)
	if rw == nil {
		fmt.Fprintln(os.Stderr, "no row", cfg.Row)
		return 2
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f := &testFile{path: cfg.Path, modTime: fi.ModTime()}
	s, err := startServer(newRouter(rw, f, rw.new().mw, false))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.close()
	fmt.Printf("ADDR %s\n", s.addr)
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range cfg.Requests {
		o, err := s.next(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b, _ := json.Marshal(o)
		fmt.Printf("OBS %s\n", b)
	}
	return 0
}

// TestStraceCrossCheck serves rows that keep and that lose the fast path in
// a child process under strace -f, downloads the file in full and with a
// range, and checks that the sendfile(2) return values strace saw add up to
// the bytes the Listener's connections counted, and that the verdict strace
// implies is the one the committed table shows. It skips only when strace
// is missing or ptrace is refused.
func TestStraceCrossCheck(t *testing.T) {
	if err := strace.Check(); err != nil {
		t.Skip("no strace here:", err)
	}
	verdicts, err := committedVerdicts(docPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := newTestFile(dir, defaultFileSize)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		kept bool // what this test expects the table to say
	}{
		{"chi-logger", true},
		{"otelhttp", true},
		{"control", false},
		{"control-net-http", false},
		{"chi-compress", false},
		{"httplog-body", false},
		{"std-stripprefix", true},
		{"go-http-metrics", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			rw := rowByID(tc.id)
			committed, ok := verdicts[rw.name]
			if !ok {
				t.Fatalf("no row %q in %s", rw.name, docPath)
			}
			if committed != [2]bool{tc.kept, tc.kept} {
				t.Fatalf("%s says full/range kept = %v, this test expects %v: a verdict flipped", docPath, committed, tc.kept)
			}
			traced, counted, body := straceRow(t, rw, f)
			if traced != counted {
				t.Errorf("strace saw sendfile(2) return %d bytes in all, the Listener's connections counted %d", traced, counted)
			}
			keptByStrace := traced >= body-2*sniffLen
			lostByStrace := traced == 0
			switch {
			case tc.kept && !keptByStrace:
				t.Errorf("the table says sendfile is kept, but strace saw only %d sendfile bytes of %d body bytes", traced, body)
			case !tc.kept && !lostByStrace:
				t.Errorf("the table says sendfile is lost, but strace saw %d sendfile bytes of %d body bytes", traced, body)
			}
			t.Logf("strace: %d sendfile bytes; Listener: %d; body: %d", traced, counted, body)
		})
	}
}

// straceRow runs rw's server under strace, makes a full and a range request,
// and returns the sum of the sendfile(2) return values, the sendfile bytes
// the connections counted, and the body bytes the client received.
func straceRow(t *testing.T, rw *row, f *testFile) (traced, counted, body int64) {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "strace.out")
	raw, _ := json.Marshal(childConfig{Row: rw.id, Path: f.path, Requests: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := strace.Command(ctx, trace, []string{"sendfile"}, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("child did not start: %q, %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	for _, k := range []kind{full, ranged} {
		resp, err := fetch(ctx, addr, rw, k, f)
		if err != nil {
			t.Fatal(err)
		}
		body += resp.Body
	}
	stdin.Close()
	var obs []observation
	for {
		line, err := out.ReadString('\n')
		if rest, ok := strings.CutPrefix(line, "OBS "); ok {
			var o observation
			if err := json.Unmarshal([]byte(rest), &o); err != nil {
				t.Fatal(err)
			}
			obs = append(obs, o)
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if len(obs) != 2 {
		t.Fatalf("child reported %d requests, want 2", len(obs))
	}
	for _, o := range obs {
		if o.Err != "" {
			t.Fatal(o.Err)
		}
		if o.Logged.Sendfile != o.Sendfile {
			t.Errorf("fastpath's Logger recorded %d sendfile bytes, the connection counted %d", o.Logged.Sendfile, o.Sendfile)
		}
		counted += o.Sendfile
	}
	sum, err := strace.ParseFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	return sum.Total("sendfile").Sum, counted, body
}

// committedVerdicts reads, from the committed table, whether each row kept
// sendfile for the full download and for the range.
func committedVerdicts(path string) (map[string][2]bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][2]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Middleware ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) < 4 {
			continue
		}
		out[cells[0]] = [2]bool{strings.HasPrefix(cells[2], "yes"), strings.HasPrefix(cells[3], "yes")}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no table rows in %s", path)
	}
	return out, nil
}
