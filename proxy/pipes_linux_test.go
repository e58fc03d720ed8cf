package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/asuser"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
)

// The kernel's default pipe limits, which the unprivileged tests need.
const (
	defaultPipeMaxSize   = 1 << 20
	defaultPipePagesSoft = 16384
)

// minPipe is internal/zerocopy's smallest pipe spliced through.
const minPipe = 32 << 10

// needUnprivileged returns a user id no process runs as, for a child, or
// skips the test (fails it under CI) when no child can run as a plain user
// or the kernel's pipe limits are not the defaults.
func needUnprivileged(t *testing.T) int {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf("skipping: "+format, args...)
	}
	if err := asuser.Check(); err != nil {
		skip("%v", err)
	}
	for _, s := range []struct {
		path string
		want int
	}{
		{"/proc/sys/fs/pipe-max-size", defaultPipeMaxSize},
		{"/proc/sys/fs/pipe-user-pages-soft", defaultPipePagesSoft},
		{"/proc/sys/fs/pipe-user-pages-hard", 0},
	} {
		raw, err := os.ReadFile(s.path)
		if err != nil {
			skip("%v", err)
		}
		if got, _ := strconv.Atoi(strings.TrimSpace(string(raw))); got != s.want {
			skip("%s is %d, not the kernel's default %d", s.path, got, s.want)
		}
	}
	uid, err := asuser.FreeUID()
	if err != nil {
		skip("%v", err)
	}
	return uid
}

// serveFiles serves files of the given sizes (random bytes) from a
// handlers.FileServer on loopback, and returns its URL and their contents.
func serveFiles(t *testing.T, sizes map[string]int) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	data := map[string][]byte{}
	for name, size := range sizes {
		data[name] = testutil.WriteRandomFile(t, dir, name, size)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	srv := &http.Server{Handler: handlers.FileServer(root), ErrorLog: discardLog}
	// A new connection for every request: how much a proxy's splice calls
	// move depends on the connection's receive window, which grows with
	// its use.
	srv.SetKeepAlivesEnabled(false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), data
}

// download gets path through c and checks the body against want.
func (c *child) download(path string, want []byte) error {
	resp, err := c.client.Get(c.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %d bytes, then %v", path, len(body), err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		return fmt.Errorf("%s: status %d, %d bytes (equal: %v), want 200 with %d", path, resp.StatusCode, len(body), bytes.Equal(body, want), len(want))
	}
	return nil
}

// loneSplices downloads path alone, n times from each child in turn, and
// returns the splice calls each download took, per child.
func loneSplices(t *testing.T, n int, path string, want []byte, children ...*child) [][]int64 {
	t.Helper()
	calls := make([][]int64, len(children))
	for range n {
		for i, c := range children {
			before := c.control("/stats").Pipes.Splices
			if err := c.download(path, want); err != nil {
				t.Fatal(err)
			}
			calls[i] = append(calls[i], c.control("/stats").Pipes.Splices-before)
		}
	}
	return calls
}

// TestPipesUnprivileged runs the proxy as a plain user, with the kernel's
// default pipe limits (64 MiB of pipes per user), while 80 slow clients hold
// transfers open and 50 downloads run at once, then downloads one file
// alone: every body is exact, no splice goes through a pipe below 32 KiB,
// and the lone download takes no more splice calls than on a fresh process
// (where pipes that shrank under the load, or that the kernel made small,
// would take many times more).
//
// How many calls a download takes depends on how much the upstream socket
// holds at each call, so the two processes download in turn, each from a
// new upstream connection, and the fewest calls of five downloads are
// compared.
func TestPipesUnprivileged(t *testing.T) {
	uid := needUnprivileged(t)
	const (
		slowClients = 80
		downloads   = 50
		lone        = 5
	)
	upstream, data := serveFiles(t, map[string]int{"slow.bin": 2 << 20, "big.bin": 2 << 20, "lone.bin": 16 << 20})
	// Send buffers of 256 KiB keep a held body of 2 MiB from fitting in
	// the sockets, which would end its transfer.
	cfg := childConfig{Upstream: upstream, SndBuf: 256 << 10}
	c := startChild(t, cfg, runAs{uid: uid})
	st := c.control("/stats")
	if st.UID != uid || st.Pipes.Budget.Privileged || st.Pipes.Budget.Pages != defaultPipePagesSoft*7/8 {
		t.Fatalf("child runs as uid %d with budget %+v; want uid %d, unprivileged, %d pages",
			st.UID, st.Pipes.Budget, uid, defaultPipePagesSoft*7/8)
	}

	// The slow clients read the start of their body and stop, holding
	// their transfers open, until released.
	var (
		held    sync.WaitGroup
		release = make(chan struct{})
		errs    = make(chan error, slowClients+downloads)
	)
	held.Add(slowClients)
	for range slowClients {
		go func() {
			var err error
			defer func() { errs <- err }()
			resp, err := c.client.Get(c.url + "/slow.bin")
			if err != nil {
				held.Done()
				return
			}
			defer resp.Body.Close()
			head := make([]byte, 64<<10)
			_, err = io.ReadFull(resp.Body, head)
			held.Done()
			if err != nil {
				return
			}
			<-release
			rest, err := io.ReadAll(resp.Body)
			if err == nil && !bytes.Equal(append(head, rest...), data["slow.bin"]) {
				err = fmt.Errorf("slow.bin: %d bytes that differ", len(head)+len(rest))
			}
		}()
	}
	held.Wait()
	var wg sync.WaitGroup
	for range downloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.download("/big.bin", data["big.bin"])
		}()
	}
	wg.Wait()
	busy := c.control("/stats")
	close(release)
	for range slowClients + downloads {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}

	// A process of its own user, so that its pipes leave the loaded one's
	// budget alone.
	freshUID, err := asuser.FreeUID()
	if err != nil {
		t.Fatal(err)
	}
	fresh := startChild(t, cfg, runAs{uid: freshUID})
	calls := loneSplices(t, lone, "/lone.bin", data["lone.bin"], c, fresh)
	after, before := slices.Min(calls[0]), slices.Min(calls[1])
	end, freshEnd := c.control("/stats"), fresh.control("/stats")
	t.Logf("lone downloads: %v splice calls after the load, %v on a fresh process; under the load %+v; after it %+v",
		calls[0], calls[1], busy.Pipes, end.Pipes)
	for _, s := range []childStats{end, freshEnd} {
		if s.Pipes.Smallest < minPipe {
			t.Errorf("a splice went through a pipe of %d bytes, below %d", s.Pipes.Smallest, minPipe)
		}
	}
	if after > 2*before {
		t.Errorf("the lone download took at least %d splice calls after the load, %d on a fresh process", after, before)
	}
	logs, _ := records(t, c.stop())
	if len(logs) != slowClients+downloads+lone {
		t.Errorf("%d request records, want %d", len(logs), slowClients+downloads+lone)
	}
	for _, rec := range logs {
		if rec["http.response.status_code"] != 200.0 || rec["error.type"] != nil {
			t.Errorf("record %v, want a whole 200", rec)
		}
	}
}

// TestPipesTooSmall runs the proxy as a user whose pipe pages another
// process of the same user holds, so that the kernel makes it 8 KiB pipes:
// no body goes through one, none is kept, every body is copied whole and
// exact, and the records say why.
func TestPipesTooSmall(t *testing.T) {
	uid := needUnprivileged(t)
	upstream, data := serveFiles(t, map[string]int{"big.bin": 4 << 20})
	hog := startChild(t, childConfig{Hog: true}, runAs{uid: uid})
	// Send buffers of 256 KiB keep a held body of 2 MiB from fitting in
	// the sockets, which would end its transfer.
	cfg := childConfig{Upstream: upstream, SndBuf: 256 << 10}
	c := startChild(t, cfg, runAs{uid: uid})
	const n = 3
	for range n {
		if err := c.download("/big.bin", data["big.bin"]); err != nil {
			t.Fatal(err)
		}
	}
	st := c.control("/stats").Pipes
	if st.Made != n || st.Open != 0 || st.Smallest != 0 || st.NoPipe[zerocopy.NoPipeSmall] != n {
		t.Errorf("pipes %+v; want %d made, each closed unused (none open, none spliced through) and counted small", st, n)
	}
	logs, spans := records(t, c.stop())
	hog.stop()
	if len(logs) != n || len(spans) != n {
		t.Fatalf("%d records and %d spans, want %d", len(logs), len(spans), n)
	}
	for i := range n {
		if logs[i]["error.type"] != nil || logs[i][middleware.SpliceSizeKey] != 0.0 || logs[i]["http.response.body.size"] != float64(len(data["big.bin"])) {
			t.Errorf("record %v, want the whole body copied", logs[i])
		}
		if spans[i][BodyKey] != "copy" || spans[i][CopyReasonKey] != string(middleware.CopyReasonPipeSmall) {
			t.Errorf("span %v, want %s copy, %s %s", spans[i], BodyKey, CopyReasonKey, middleware.CopyReasonPipeSmall)
		}
	}
}

// gatedUpstream answers each request with body only once n requests are
// waiting, so that n transfers run through the proxy at once; next starts
// another round.
type gatedUpstream struct {
	url  string
	body []byte
	mu   sync.Mutex
	n    int
	seen int
	all  chan struct{}
}

func newGatedUpstream(t *testing.T, body []byte) *gatedUpstream {
	t.Helper()
	g := &gatedUpstream{body: body}
	srv := &http.Server{ErrorLog: discardLog, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if g.seen++; g.seen == g.n {
			close(g.all)
		}
		all := g.all
		g.mu.Unlock()
		select {
		case <-all:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(g.body)))
		w.Write(g.body)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g.url = "http://" + ln.Addr().String()
	return g
}

// burst gets the gated body through c n times at once and checks each.
func (g *gatedUpstream) burst(c *child, n int) error {
	g.mu.Lock()
	g.n, g.seen, g.all = n, 0, make(chan struct{})
	g.mu.Unlock()
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.download("/", g.body) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TestPipesUnderDescriptorLimit runs httputil.ReverseProxy and then the
// proxy in a child limited to 1024 descriptors (RLIMIT_NOFILE), with the
// garbage collector off. First 100 downloads at once, spliced: afterwards
// the pipe descriptors go back to what the process held before, with no
// garbage collection. Then 400 downloads ramping up, each client reading
// the start of its body and holding its transfer open until all 400 are
// under way: 800 sockets, and a pipe each would take 800 descriptors more.
// The proxy serves all of them exactly, as ReverseProxy does: it refuses
// no connection and fails no dial, and the records say which bodies were
// copied for want of descriptors.
func TestPipesUnderDescriptorLimit(t *testing.T) {
	const ramp = 400
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 4*ramp {
		if os.Getenv("CI") != "" {
			t.Fatalf("RLIMIT_NOFILE %d (%v): this test's clients and upstream need %d", rl.Cur, err, 4*ramp)
		}
		t.Skipf("skipping: RLIMIT_NOFILE %d (%v): this test's clients and upstream need %d", rl.Cur, err, 4*ramp)
	}
	gated := newGatedUpstream(t, testutil.RandomBytes(256<<10))
	upstream, data := serveFiles(t, map[string]int{"held.bin": 512 << 10})
	tests := []struct {
		name string
		peer bool
	}{
		{name: "httputil.ReverseProxy", peer: true},
		{name: "fastpath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := runAs{uid: -1, env: []string{"GOGC=off"}}
			c := startChild(t, childConfig{Upstream: gated.url, Peer: tt.peer, NoFile: 1024}, env)
			baseline := c.pipeFDs()
			if err := gated.burst(c, 100); err != nil {
				t.Fatalf("100 at once: %v", err)
			}
			st := c.control("/wait-closed")
			if got := c.pipeFDs(); got != baseline || st.NumGC != 0 || st.Pipes.Open != 0 {
				t.Errorf("after 100 at once: %d pipe descriptors (%d before), %d pipes open, %d garbage collections; want as before, none, none",
					got, baseline, st.Pipes.Open, st.NumGC)
			}
			if !tt.peer && st.Pipes.Made == 0 {
				t.Errorf("after 100 at once: no pipe made; want splices")
			}
			logs, _ := records(t, c.stop())
			checkWhole(t, logs, 100)

			c = startChild(t, childConfig{Upstream: upstream, Peer: tt.peer, NoFile: 1024, SndBuf: 64 << 10}, env)
			baseline = c.pipeFDs()
			if err := holdRamp(c, ramp, "/held.bin", data["held.bin"]); err != nil {
				t.Fatal(err)
			}
			st = c.control("/wait-closed")
			if got := c.pipeFDs(); got != baseline || st.NumGC != 0 {
				t.Errorf("after the ramp: %d pipe descriptors (%d before), %d garbage collections", got, baseline, st.NumGC)
			}
			logs, spans := records(t, c.stop())
			if got := c.stderr.String(); got != "" {
				t.Errorf("the proxy logged:\n%s", got)
			}
			checkWhole(t, logs, ramp)
			reasons := map[any]int{}
			spliced := 0
			for _, sp := range spans {
				reasons[sp[CopyReasonKey]]++
			}
			for _, rec := range logs {
				if rec[middleware.SpliceSizeKey].(float64) > 0 {
					spliced++
				}
			}
			t.Logf("the ramp: copy reasons %v, %d bodies spliced in part or whole; pipes %+v", reasons, spliced, st.Pipes)
			if tt.peer {
				return
			}
			// The first transfers took pipes while the table was less
			// than half full, and gave them up when it filled.
			for r := range reasons {
				if r != nil && r != string(middleware.CopyReasonPipeDescriptors) {
					t.Errorf("copy reason %v, want none or %s", r, middleware.CopyReasonPipeDescriptors)
				}
			}
			if spliced == 0 || reasons[string(middleware.CopyReasonPipeDescriptors)] == 0 {
				t.Errorf("%d bodies spliced, %d copied for want of descriptors; want some of both", spliced, reasons[string(middleware.CopyReasonPipeDescriptors)])
			}
		})
	}
}

// checkWhole checks that there are n request records, each a whole 200.
func checkWhole(t *testing.T, logs []map[string]any, n int) {
	t.Helper()
	if len(logs) != n {
		t.Errorf("%d request records, want %d", len(logs), n)
	}
	for _, rec := range logs {
		if rec["http.response.status_code"] != 200.0 || rec["error.type"] != nil {
			t.Errorf("record %v, want a whole 200", rec)
		}
	}
}

// holdRamp starts n downloads of path through c one after another, each
// client with a small receive buffer (and c small send buffers) reading the
// start of its body and then holding the transfer open, so that n transfers
// are under way at the end; then it reads them all to the end and checks
// them against want.
func holdRamp(c *child, n int, path string, want []byte) error {
	// A 16 KiB receive buffer keeps the sockets from taking a held body
	// whole.
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: n, DialContext: (&net.Dialer{
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
			return serr
		},
	}).DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	const head = 16 << 10
	release := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		started := make(chan error, 1)
		go func() {
			resp, err := client.Get(c.url + path)
			if err != nil {
				started <- err
				return
			}
			defer resp.Body.Close()
			got := make([]byte, head)
			if _, err := io.ReadFull(resp.Body, got); err != nil {
				started <- err
				return
			}
			started <- nil
			<-release
			rest, err := io.ReadAll(resp.Body)
			if err == nil && !bytes.Equal(append(got, rest...), want) {
				err = fmt.Errorf("%s: %d bytes that differ", path, head+len(rest))
			}
			errs <- err
		}()
		if err := <-started; err != nil {
			close(release)
			return err
		}
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}
