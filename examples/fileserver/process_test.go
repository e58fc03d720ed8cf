package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// exampleBinary builds examples/fileserver once per test run: the load and
// fault tests run the project's main job as a user would.
var exampleBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fastpath-example")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fileserver")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/fastpath-go/fastpath/examples/fileserver").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// child is a running examples/fileserver process.
type child struct {
	cmd    *exec.Cmd
	base   string // http://addr
	debug  string // http://debug-addr
	stdout *output
	stderr *testutil.LockedBuffer
	done   chan error
}

// output is a child's standard output, which wakes whoever waits for a line
// as each write arrives.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	grew chan struct{} // closed, and replaced, on each write
}

func newOutput() *output { return &output{grew: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.grew)
	o.grew = make(chan struct{})
	return o.buf.Write(p)
}

// String returns what the child has written so far.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until found holds of what the child has written, checking
// again each time it writes. The minutes only keep a broken server from
// hanging the test.
func (o *output) waitFor(t *testing.T, what string, found func(out string) bool) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		o.mu.Lock()
		out, grew := o.buf.String(), o.grew
		o.mu.Unlock()
		if found(out) {
			return
		}
		select {
		case <-grew:
		case <-timeout:
			t.Fatalf("no %s after two minutes:\n%s", what, out)
		}
	}
}

// startExample runs the example binary serving root with extra flags.
func startExample(t *testing.T, root string, flags ...string) *child {
	t.Helper()
	bin, err := exampleBinary()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-root", root}, flags...)
	e := &child{cmd: exec.Command(bin, args...), stdout: newOutput(), stderr: &testutil.LockedBuffer{}, done: make(chan error, 1)}
	e.cmd.Stdout = e.stdout
	stderr, err := e.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cmd.Process.Kill(); <-e.done })
	files := regexp.MustCompile(`files:\s+(http://\S+)/files/`)
	debug := regexp.MustCompile(`debug:\s+(http://\S+)/debug/pprof/`)
	sc := bufio.NewScanner(stderr)
	for (e.base == "" || e.debug == "") && sc.Scan() {
		e.stderr.Write(append(sc.Bytes(), '\n'))
		if m := files.FindStringSubmatch(sc.Text()); m != nil {
			e.base = m[1]
		}
		if m := debug.FindStringSubmatch(sc.Text()); m != nil {
			e.debug = m[1]
		}
	}
	go func() {
		io.Copy(e.stderr, stderr)
		e.done <- e.cmd.Wait()
	}()
	if e.base == "" || e.debug == "" {
		t.Fatalf("example did not start:\n%s", e.stderr.String())
	}
	return e
}

// stop sends SIGTERM and waits for a clean exit.
func (e *child) stop(t *testing.T) {
	t.Helper()
	e.cmd.Process.Signal(syscall.SIGTERM)
	e.wait(t)
}

// wait waits for the process to exit cleanly.
func (e *child) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-e.done:
		e.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("example exited with %v:\n%s", err, e.stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("example did not exit after SIGTERM")
	}
}

// logs returns the example's JSON log records so far.
func (e *child) logs(t *testing.T) []map[string]any {
	t.Helper()
	return parseLogs(t, e.stdout.String())
}

// parseLogs parses JSON log lines.
func parseLogs(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, sc.Text())
		}
		recs = append(recs, m)
	}
	return recs
}

// requestLogs returns the request records by request id.
func (e *child) requestLogs(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, m := range e.logs(t) {
		if id, ok := m["request_id"].(string); ok && m["msg"] == "http request" {
			out[id] = m
		}
	}
	return out
}

// goroutines returns how many of the example's goroutines run fastpath's
// library code: after a test's clients are done, that must be 0. The total
// is no measure: it moves with goroutines that come and go on their own (a
// profile request's own background read, one just exiting).
func (e *child) goroutines(t *testing.T) int {
	t.Helper()
	n, err := countGoroutines(e.get(t, "/debug/pprof/goroutine?debug=1"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countGoroutines counts, in a debug=1 goroutine profile, the goroutines
// running fastpath's library code (middleware, handlers, internal), leaving
// out the accept loops, there from start to end. A goroutine serving a
// connection is left to settle, which waits for every connection to close;
// one leaked in fastpath's code is counted whatever it serves.
func countGoroutines(profile string) (int, error) {
	first, rest, _ := strings.Cut(profile, "\n")
	if _, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total ")); err != nil {
		return 0, fmt.Errorf("goroutine profile: %q", first)
	}
	total := 0
	for _, group := range strings.Split(rest, "\n\n") {
		head, stack, _ := strings.Cut(strings.TrimSpace(group), "\n")
		count, _, ok := strings.Cut(head, " @ ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(count)
		if err != nil {
			return 0, fmt.Errorf("goroutine profile group %q", head)
		}
		if strings.Contains(stack, "net/http.(*Server).Serve+") { // accept loops
			continue
		}
		for _, line := range strings.Split(stack, "\n") {
			if strings.Contains(line, "github.com/fastpath-go/fastpath/") && !strings.Contains(line, "github.com/fastpath-go/fastpath/examples/") {
				total += n
				break
			}
		}
	}
	return total, nil
}

// settle waits until no connection to the example is open, through the
// example's /debug/idle hook, which answers once its server has seen the
// last one close, and returns how many goroutines then run fastpath's code.
func (e *child) settle(t *testing.T) int {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Minute} // /debug/idle waits up to 90 s
	resp, err := client.Get(e.debug + "/debug/idle")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connections left open: /debug/idle answered %d %s", resp.StatusCode, body)
	}
	return e.goroutines(t)
}

// memStat returns a runtime.MemStats figure from the heap profile, such as
// "HeapInuse".
func (e *child) memStat(t *testing.T, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^# ` + name + ` = (\d+)`).FindStringSubmatch(e.get(t, "/debug/pprof/heap?debug=1"))
	if m == nil {
		t.Fatalf("no %s in the heap profile", name)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// procStatus returns a figure from /proc/<pid>/status, in bytes, such as
// "VmHWM" (peak resident set size).
func (e *child) procStatus(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc status", name)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// debugClient opens a connection per request, so no idle connection of its
// own holds a goroutine in the server it counts.
var debugClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

func (e *child) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := debugClient.Get(e.debug + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCountGoroutines(t *testing.T) {
	profile := `goroutine profile: total 12
3 @ 0x1 0x2
#	0x1	net/http.(*conn).serve+0x1	/x/server.go:1

2 @ 0x7
#	0x7	internal/poll.(*FD).Read+0x1	/x/fd_unix.go:1
#	0x8	github.com/fastpath-go/fastpath/handlers.serveFile+0x1	/x/serve.go:1

1 @ 0x3
#	0x3	net/http/pprof.handler.ServeHTTP+0x1	/x/pprof.go:1
#	0x4	net/http.(*conn).serve+0x1	/x/server.go:1

1 @ 0x5
#	0x5	net/http.(*connReader).backgroundRead+0x32	/x/server.go:702

1 @ 0x9
#	0x9	github.com/fastpath-go/fastpath/internal/zerocopy.Listener.Accept+0x21	/x/conn.go:35
#	0xa	net/http.(*Server).Serve+0x30b	/x/server.go:3434

1 @ 0xb
#	0xb	github.com/fastpath-go/fastpath/examples/internal/app.(*Server).Serve+0x68d	/x/serve.go:249
#	0xc	main.main+0xf4	/x/main.go:40

2 @ 0x6
#	0x6	os/signal.loop+0x12	/x/signal_unix.go:23

1 @ 0xd
#	0xd	github.com/fastpath-go/fastpath/examples/internal/app.(*tracker).connState+0x1	/x/serve.go:1
#	0xe	net/http.(*conn).setState+0x1	/x/server.go:1
#	0xf	net/http.(*conn).serve.func1+0x1	/x/server.go:1
#	0x10	net/http.(*conn).serve+0x1	/x/server.go:1

4 @ 0x11
#	0x11	sync.(*WaitGroup).Wait+0x1	/x/waitgroup.go:1
#	0x12	github.com/fastpath-go/fastpath/middleware.Logger.func1+0x1	/x/logger.go:1
#	0x13	net/http.(*conn).serve+0x1	/x/server.go:1

1 @ 0x497721
`
	n, err := countGoroutines(profile)
	if err != nil || n != 6 {
		t.Errorf("countGoroutines = %d, %v; want 6 (2 in fastpath's handlers, 4 in its middleware; not the connections, the accept loop or the examples' code)", n, err)
	}
	if _, err := countGoroutines("not a profile"); err == nil {
		t.Error("countGoroutines accepted a non-profile")
	}
}
