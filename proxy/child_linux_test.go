package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fastpath-go/fastpath/internal/asuser"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
)

// The tests of the pipes run the proxy in a child process (this test
// binary, re-executed), so that a user, a descriptor limit and GOGC apply to
// the proxy alone: childEnv carries its childConfig as JSON.
const childEnv = "FASTPATH_PROXY_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

// childConfig is what a child process runs.
type childConfig struct {
	Upstream string // the upstream's URL
	Peer     bool   // httputil.ReverseProxy alone, instead of ReverseProxy
	NoFile   uint64 // RLIMIT_NOFILE to set, 0 to keep the inherited one
	SndBuf   int    // SO_SNDBUF of the client connections, 0 for the kernel's
	Hog      bool   // hold the user's pipe pages instead of serving
}

// childStats is what a child's control listener reports.
type childStats struct {
	Pipes zerocopy.PipeStats
	NumGC uint32
	UID   int
}

// runChild serves cfg until standard input closes. It writes "ADDR proxy
// control" first, then a line per request log record ("LOG {...}") and per
// span ("SPAN {...}"), on standard output; the servers' and ReverseProxy's
// error logs go to standard error. The control listener answers /stats, and
// /wait-closed once the pipe pool has closed every pipe.
func runChild(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	if cfg.NoFile > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: cfg.NoFile, Max: cfg.NoFile}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			return 2
		}
	}
	if cfg.Hog {
		return hogPipes()
	}
	out := &lineWriter{w: os.Stdout}
	errorLog := log.New(os.Stderr, "", 0)
	target, err := url.Parse(cfg.Upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rp := &httputil.ReverseProxy{
		Rewrite:  func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ErrorLog: errorLog,
	}
	var h http.Handler
	if cfg.Peer {
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024}
		h = rp
	} else {
		tr := &Transport{MaxIdleConnsPerHost: 1024}
		rp.Transport = tr
		h = ReverseProxy(rp)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spanLines{out}))
	h = middleware.Tracing(middleware.WithTracerProvider(tp))(
		middleware.Logger(slog.New(slog.NewJSONHandler(prefixed{out, "LOG "}, nil)))(h))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv := &http.Server{Handler: h, ErrorLog: errorLog, ReadHeaderTimeout: time.Minute}
	if cfg.SndBuf > 0 {
		ln = sndBufListener{ln, cfg.SndBuf}
	}
	go srv.Serve(middleware.Listener(ln))
	stats := func(w http.ResponseWriter) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(childStats{Pipes: zerocopy.Pipes(), NumGC: ms.NumGC, UID: os.Getuid()})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) { stats(w) })
	mux.HandleFunc("/wait-closed", func(w http.ResponseWriter, r *http.Request) {
		if err := zerocopy.WaitPipesClosed(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		stats(w)
	})
	go (&http.Server{Handler: mux, ErrorLog: errorLog}).Serve(ctl)
	out.Write([]byte(fmt.Sprintf("ADDR %s %s\n", ln.Addr(), ctl.Addr())))
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	tp.Shutdown(context.Background())
	return 0
}

// hogPipes takes the user's pipe pages: 1 MiB pipes until the kernel
// refuses to grow one, which it does once the user's pipes hold
// fs.pipe-user-pages-soft. It writes "HOG n" and holds them until standard
// input closes.
func hogPipes() int {
	n := 0
	for {
		var fds [2]int
		if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
			break
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), 1031 /* F_SETPIPE_SZ */, 1<<20); errno != 0 {
			break
		}
		n++
	}
	fmt.Printf("HOG %d\n", n)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// sndBufListener sets SO_SNDBUF on the connections it accepts: a client's
// body then fills the sockets sooner, as over a long path.
type sndBufListener struct {
	net.Listener
	size int
}

func (l sndBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(l.size)
	}
	return c, err
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixed writes each record (one Write each, as slog's JSONHandler
// does) after a prefix.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// spanLines writes each span's attributes as a SPAN line.
type spanLines struct{ w io.Writer }

func (s spanLines) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, sp := range spans {
		m := map[string]any{}
		for _, kv := range sp.Attributes() {
			m[string(kv.Key)] = attrValue(kv.Value)
		}
		b, _ := json.Marshal(m)
		s.w.Write(append(append([]byte("SPAN "), b...), '\n'))
	}
	return nil
}

func (spanLines) Shutdown(context.Context) error { return nil }

func attrValue(v attribute.Value) any {
	if v.Type() == attribute.INT64 {
		return v.AsInt64()
	}
	return v.Emit()
}

// child is a running child process.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string // the proxy's base URL
	ctl    string // the control listener's base URL
	stdin  io.WriteCloser
	stderr testutil.LockedBuffer
	lines  chan []string // the output lines after ADDR, once the child has exited
	client *http.Client
	exited bool
}

// runAs says whom a child runs as.
type runAs struct {
	uid int      // -1: this process's user
	env []string // added to the environment
}

// startChild runs a child serving cfg and waits until it listens.
func startChild(t *testing.T, cfg childConfig, as runAs) *child {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	bin := os.Args[0]
	if as.uid >= 0 {
		exe, remove, err := asuser.Executable(bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(remove)
		bin = exe
	}
	c := &child{t: t, lines: make(chan []string, 1)}
	c.cmd = exec.Command(bin, "-test.run=^$")
	c.cmd.Dir = os.TempDir()
	c.cmd.Env = append(append(os.Environ(), as.env...), childEnv+"="+string(raw))
	if as.uid >= 0 {
		asuser.Apply(c.cmd, as.uid)
	}
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.stop() })
	br := bufio.NewReader(stdout)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("child did not start: %v\n%s", err, c.stderr.String())
	}
	go func() {
		var lines []string
		sc := bufio.NewScanner(br)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		c.lines <- lines
	}()
	if cfg.Hog {
		return c
	}
	f := strings.Fields(first)
	if len(f) != 3 || f[0] != "ADDR" {
		t.Fatalf("child said %q", first)
	}
	c.url, c.ctl = "http://"+f[1], "http://"+f[2]
	c.client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1024}}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// control asks the child's control listener for path and returns its stats.
func (c *child) control(path string) childStats {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.ctl+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	var s childStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("%s: status %d, %v", path, resp.StatusCode, err)
	}
	return s
}

// pipeFDs counts the child's descriptors that are pipes.
func (c *child) pipeFDs() int {
	c.t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}

// stop ends the child (closing its standard input) and returns its output
// lines after ADDR.
func (c *child) stop() []string {
	if c.exited {
		return nil
	}
	c.exited = true
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("child: %v\n%s", err, c.stderr.String())
		}
	case <-time.After(2 * time.Minute):
		c.cmd.Process.Kill()
		<-done
		c.t.Errorf("child did not exit in 2 minutes")
	}
	return <-c.lines
}

// records splits a child's output lines into request log records and span
// attributes.
func records(t *testing.T, lines []string) (logs, spans []map[string]any) {
	t.Helper()
	for _, l := range lines {
		kind, js, _ := strings.Cut(l, " ")
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("child line %q: %v", l, err)
		}
		switch kind {
		case "LOG":
			logs = append(logs, m)
		case "SPAN":
			spans = append(spans, m)
		}
	}
	return logs, spans
}
