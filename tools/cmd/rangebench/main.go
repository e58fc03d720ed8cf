//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// The servers compared, in table order; net/http is the baseline.
const (
	sNetHTTP  = "net/http"
	sFastpath = "fastpath"
	sNginx    = "nginx"
)

var stacks = []string{sNetHTTP, sFastpath, sNginx}

// ioSyscalls are the system calls traced: every one that can move request
// or response bytes.
var ioSyscalls = []string{"read", "write", "writev", "sendfile", "splice", "pread64",
	"readv", "pwrite64", "recvfrom", "sendto", "recvmsg", "sendmsg", "copy_file_range"}

// columns are the calls with a column of their own; the others are summed
// under "other".
var columns = []string{"read", "write", "writev", "sendfile", "splice", "pread64"}

const fileName = "big.bin"

func main() {
	child := flag.String("child", "", "internal: serve as this stack")
	file := flag.String("file", "", "internal: the file the child serves")
	listen := flag.String("listen", "", "internal: the address the child listens on")
	size := flag.Int64("size", 256<<20, "size of the file served, in bytes")
	ranges := flag.Int("ranges", 8, "ranges per request")
	partSize := flag.Int64("part-size", 16<<20, "bytes per range")
	requests := flag.Int("requests", 4, "requests per round")
	smallRanges := flag.Int("small-ranges", 64, "ranges per request of the small-parts case (0: leave it out)")
	smallPartSize := flag.Int64("small-part-size", 64<<10, "bytes per range of the small-parts case")
	smallRequests := flag.Int("small-requests", 128, "requests per round of the small-parts case")
	rounds := flag.Int("rounds", 5, "interleaved rounds for the CPU median")
	straceRounds := flag.Int("strace-rounds", 1, "traced runs per server and case for the system calls (0: none)")
	straceRequests := flag.Int("strace-requests", 4, "requests per traced run (at most a round's)")
	verbose := flag.Bool("v", false, "also print every round's CPU time and every traced call")
	flag.Parse()
	if *child != "" {
		if err := serve(*child, *file, *listen); err != nil {
			fmt.Fprintln(os.Stderr, "rangebench child:", err)
			os.Exit(1)
		}
		return
	}
	cases := []rangeCase{{ranges: *ranges, partSize: *partSize, requests: *requests}}
	if *smallRanges > 0 {
		cases = append(cases, rangeCase{ranges: *smallRanges, partSize: *smallPartSize, requests: *smallRequests})
	}
	res, err := run(config{size: *size, cases: cases, rounds: *rounds, straceRounds: *straceRounds, straceRequests: *straceRequests, progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rangebench:", err)
		os.Exit(1)
	}
	res.write(os.Stdout)
	if *verbose {
		res.writeDetails(os.Stdout)
	}
}

type config struct {
	size           int64
	cases          []rangeCase
	rounds         int
	straceRounds   int
	straceRequests int
	progress       io.Writer
}

// rangeCase is one kind of request: ranges evenly spaced ranges of partSize
// bytes each, sent requests times per round.
type rangeCase struct {
	ranges   int
	partSize int64
	requests int
}

// partBytes returns the bytes of part bodies in one response.
func (c rangeCase) partBytes() int64 { return int64(c.ranges) * c.partSize }

func (c rangeCase) String() string { return fmt.Sprintf("%d × %s", c.ranges, sizeName(c.partSize)) }

// sizeName writes n in the largest binary unit that divides it.
func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// byteRange is length bytes from offset start.
type byteRange struct{ start, length int64 }

// evenRanges returns n ranges of length bytes spread evenly over size
// bytes: range i starts at i*(size/n).
func evenRanges(size int64, n int, length int64) ([]byteRange, error) {
	if n < 1 || length < 1 {
		return nil, fmt.Errorf("%d ranges of %d bytes: want at least one range of at least one byte", n, length)
	}
	stride := size / int64(n)
	if length > stride {
		return nil, fmt.Errorf("%d ranges of %d bytes do not fit apart in %d bytes", n, length, size)
	}
	out := make([]byteRange, n)
	for i := range out {
		out[i] = byteRange{start: int64(i) * stride, length: length}
	}
	return out, nil
}

// rangeHeader returns the Range field value asking for rs.
func rangeHeader(rs []byteRange) string {
	var b strings.Builder
	b.WriteString("bytes=")
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", r.start, r.start+r.length-1)
	}
	return b.String()
}

// verifyMultipart checks a multipart/byteranges response to a request for
// want ranges of content: exactly those parts in that order, each with its
// Content-Range and exactly the bytes of content it names, and, when
// contentLength is not negative, exactly contentLength bytes of body. It
// returns the bytes of the parts.
func verifyMultipart(contentType string, contentLength int64, body io.Reader, content []byte, want []byteRange) (int64, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/byteranges" || params["boundary"] == "" {
		return 0, fmt.Errorf("Content-Type %q is not multipart/byteranges with a boundary", contentType)
	}
	cr := &testutil.CountingReader{R: body}
	// multipart.Reader reads through the *bufio.Reader it is given, or
	// else one of 4 KiB, which would make the client read the socket 4 KiB
	// at a time and become the bottleneck.
	mr := multipart.NewReader(bufio.NewReaderSize(cr, 1<<20), params["boundary"])
	buf := make([]byte, 256<<10)
	var got int64
	for i := 0; ; i++ {
		// NextRawPart: NextPart would decode a quoted-printable part.
		p, err := mr.NextRawPart()
		if err == io.EOF {
			if i != len(want) {
				return got, fmt.Errorf("%d parts, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			return got, fmt.Errorf("part %d: %w", i+1, err)
		}
		if i >= len(want) {
			return got, fmt.Errorf("more than the %d parts asked for", len(want))
		}
		ra := want[i]
		wantCR := fmt.Sprintf("bytes %d-%d/%d", ra.start, ra.start+ra.length-1, len(content))
		if h := p.Header.Values("Content-Range"); len(h) != 1 || h[0] != wantCR {
			return got, fmt.Errorf("part %d: Content-Range %q, want %q", i+1, h, wantCR)
		}
		n, err := comparePart(p, content[ra.start:ra.start+ra.length], buf)
		got += n
		if err != nil {
			return got, fmt.Errorf("part %d (%s): %w", i+1, wantCR, err)
		}
	}
	// What follows the closing delimiter is the epilogue.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return got, fmt.Errorf("after the parts: %w", err)
	}
	if contentLength >= 0 && cr.N != contentLength {
		return got, fmt.Errorf("body of %d bytes, Content-Length %d", cr.N, contentLength)
	}
	return got, nil
}

// comparePart reads r to its end and compares it with want.
func comparePart(r io.Reader, want, buf []byte) (int64, error) {
	var off int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if off+int64(n) > int64(len(want)) {
				return off + int64(n), fmt.Errorf("more than %d bytes", len(want))
			}
			if w := want[off : off+int64(n)]; !bytes.Equal(buf[:n], w) {
				i := 0
				for buf[i] == w[i] {
					i++
				}
				return off + int64(n), fmt.Errorf("byte %d is %#02x, want %#02x", off+int64(i), buf[i], w[i])
			}
			off += int64(n)
		}
		if err == io.EOF {
			if off != int64(len(want)) {
				return off, fmt.Errorf("%d bytes, want %d", off, len(want))
			}
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

// result is what was measured of one server in one case.
type result struct {
	stack   string
	skipped string          // why the server could not run
	cpu     []time.Duration // per round
	runs    []tracedRun     // per strace round
}

// tracedRun is the system calls of one traced run of requests, the traced
// start-up subtracted.
type tracedRun struct {
	calls    strace.Summary
	requests int
	total    int64 // I/O system calls per request
}

func newTracedRun(calls strace.Summary, requests int) tracedRun {
	return tracedRun{calls: calls, requests: requests, total: calls.Total(ioSyscalls...).Count / int64(max(requests, 1))}
}

// median returns the traced run with the median number of I/O system calls
// per request (the lower of the middle two), and whether there is one.
func (r *result) median() (tracedRun, bool) {
	if len(r.runs) == 0 {
		return tracedRun{}, false
	}
	s := slices.Clone(r.runs)
	slices.SortStableFunc(s, func(a, b tracedRun) int { return int(a.total - b.total) })
	return s[(len(s)-1)/2], true
}

type caseResult struct {
	c    rangeCase
	rows []*result
}

func (cr *caseResult) find(stack string) *result {
	for _, r := range cr.rows {
		if r.stack == stack && r.skipped == "" {
			return r
		}
	}
	return nil
}

type results struct {
	cfg       config
	cases     []*caseResult
	pinned    bool
	nginx     string // version, "" if not installed
	straceErr error
	took      time.Duration
}

// bench holds what one run needs.
type bench struct {
	cfg     config
	dir     string
	file    string
	self    string
	content []byte
	pin     bool
}

func run(cfg config) (*results, error) {
	start := time.Now()
	dir, files, err := benchproc.WorkDir("rangebench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b := &bench{cfg: cfg, dir: dir, file: filepath.Join(files, fileName), content: testutil.RandomBytes(int(cfg.size))}
	if err := os.WriteFile(b.file, b.content, 0o644); err != nil {
		return nil, err
	}
	// Warm the page cache, so every server reads the file from memory.
	if err := benchproc.Warm(b.file); err != nil {
		return nil, err
	}
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	b.pin = benchproc.PinClient(cfg.progress, "rangebench")
	res := &results{cfg: cfg, pinned: b.pin, straceErr: strace.Check()}
	skip := map[string]string{}
	if _, err := exec.LookPath("nginx"); err != nil {
		skip[sNginx] = "nginx is not installed (.ci/install-tools bench installs it)"
		fmt.Fprintln(cfg.progress, "rangebench: skipping nginx:", skip[sNginx])
	} else {
		res.nginx = benchproc.NginxVersion()
	}
	for _, c := range cfg.cases {
		if _, err := evenRanges(cfg.size, c.ranges, c.partSize); err != nil {
			return nil, err
		}
		cr := &caseResult{c: c}
		for _, s := range stacks {
			cr.rows = append(cr.rows, &result{stack: s, skipped: skip[s]})
		}
		res.cases = append(res.cases, cr)
	}
	// Each round starts with the next server, so none always runs first.
	active := func(cr *caseResult, round int) []*result {
		return slices.DeleteFunc(benchproc.Rotated(cr.rows, round), func(r *result) bool { return r.skipped != "" })
	}
	for round := range cfg.rounds {
		for _, cr := range res.cases {
			for _, r := range active(cr, round) {
				fmt.Fprintf(cfg.progress, "%s round %d/%d: %s: %s\n", since(start), round+1, cfg.rounds, cr.c, r.stack)
				cpu, err := b.measure(r.stack, cr.c, cr.c.requests, "")
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", r.stack, cr.c, err)
				}
				r.cpu = append(r.cpu, cpu)
			}
		}
	}
	for round := range cfg.straceRounds {
		if res.straceErr != nil {
			break
		}
		for _, cr := range res.cases {
			for _, r := range active(cr, round) {
				fmt.Fprintf(cfg.progress, "%s strace %d/%d: %s: %s\n", since(start), round+1, cfg.straceRounds, cr.c, r.stack)
				idle, err := b.traced(r.stack, cr.c, 0)
				if err != nil {
					return nil, fmt.Errorf("%s under strace: %w", r.stack, err)
				}
				n := max(min(cr.c.requests, cfg.straceRequests), 1)
				full, err := b.traced(r.stack, cr.c, n)
				if err != nil {
					return nil, fmt.Errorf("%s, %s under strace: %w", r.stack, cr.c, err)
				}
				r.runs = append(r.runs, newTracedRun(subtract(full, idle), n))
			}
		}
	}
	res.took = time.Since(start)
	return res, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// traced runs a server under strace for requests requests of c and returns
// what the trace counted.
func (b *bench) traced(stack string, c rangeCase, requests int) (strace.Summary, error) {
	trace := filepath.Join(b.dir, "strace.out")
	defer os.Remove(trace)
	if _, err := b.measure(stack, c, requests, trace); err != nil {
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

// measure starts a server (under strace when trace is set), sends it a
// one-byte warm-up request and then requests requests for the ranges of c,
// verifying every response, and returns the server process's CPU time over
// those requests.
func (b *bench) measure(stack string, c rangeCase, requests int, trace string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ranges, err := evenRanges(b.cfg.size, c.ranges, c.partSize)
	if err != nil {
		return 0, err
	}
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return 0, err
	}
	var argv []string
	if stack == sNginx {
		// nginx serves by sendfile, with no max_ranges: no limit on the
		// number of ranges.
		argv, err = benchproc.NginxCommand(b.dir, "nginx", benchproc.NginxFiles(addr, filepath.Dir(b.file)))
		if err != nil {
			return 0, err
		}
	} else {
		argv = []string{b.self, "-child", stack, "-file", b.file, "-listen", addr}
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
	// The Go servers stop when their standard input closes, nginx on
	// SIGTERM.
	srv, err := benchproc.StartServer(cmd, addr, stack == sNginx, trace != "")
	defer srv.Stop()
	if err != nil {
		return 0, err
	}
	pid := srv.Pid
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	// One small request first, so connection set-up is not measured.
	if err := b.warmUp(client, "http://"+addr+"/"+fileName); err != nil {
		return 0, err
	}
	before, err := benchproc.ProcCPU(pid)
	if err != nil {
		return 0, err
	}
	header := rangeHeader(ranges)
	for range requests {
		if err := b.get(client, "http://"+addr+"/"+fileName, header, ranges); err != nil {
			return 0, err
		}
	}
	after, err := benchproc.ProcCPU(pid)
	if err != nil {
		return 0, err
	}
	client.CloseIdleConnections()
	if err := srv.Stop(); err != nil {
		return 0, fmt.Errorf("server: %w", err)
	}
	return after - before, nil
}

func (b *bench) warmUp(client *http.Client, url string) error {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=0-0")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, b.content[:1]) {
		return fmt.Errorf("warm-up request: status %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	return nil
}

// get sends one multi-range request and verifies the answer.
func (b *bench) get(client *http.Client, url, header string, ranges []byteRange) error {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", header)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("status %d, want 206", resp.StatusCode)
	}
	if _, err := verifyMultipart(resp.Header.Get("Content-Type"), resp.ContentLength, resp.Body, b.content, ranges); err != nil {
		return fmt.Errorf("multipart/byteranges response: %w", err)
	}
	return nil
}

// serve runs a Go server for stack on addr until standard input closes.
func serve(stack, file, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var h http.Handler
	switch stack {
	case sNetHTTP:
		// As tools/cmd/bench serves net/http: open the file, ServeContent.
		h = benchproc.ServeFile(file)
	case sFastpath:
		root, err := os.OpenRoot(filepath.Dir(file))
		if err != nil {
			return err
		}
		defer root.Close()
		h = handlers.FileServer(root)
		ln = middleware.Listener(ln)
	default:
		return errors.New("unknown stack " + stack)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// perGiB scales a round's CPU time to one GiB of part bodies.
func perGiB(d time.Duration, c rangeCase) time.Duration {
	return benchproc.PerGiB(d, c.partBytes()*int64(c.requests))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

// perRequest writes n per request: whole when it divides, else to one
// decimal.
func perRequest(n int64, requests int) string {
	if requests <= 0 {
		return "-"
	}
	if n%int64(requests) == 0 {
		return strconv.FormatInt(n/int64(requests), 10)
	}
	return strconv.FormatFloat(float64(n)/float64(requests), 'f', 1, 64)
}

// ratio writes v/base: "0.42x" down to 0.1, below that as the fraction
// "1/150", which reads better than 0.0067x.
func ratio(v, base float64) string {
	switch {
	case base <= 0:
		return "-"
	case v <= 0:
		return "0"
	case v/base >= 0.1:
		return fmt.Sprintf("%.2fx", v/base)
	}
	return fmt.Sprintf("1/%.0f", base/v)
}

func (res *results) write(w io.Writer) {
	names := make([]string, len(res.cases))
	for i, cr := range res.cases {
		names[i] = fmt.Sprintf("%s ranges (%d requests)", cr.c, cr.c.requests)
	}
	fmt.Fprintf(w, "multi-range GETs of a %s file of random bytes (page cache warm) over loopback, every part checked byte for byte; per round: %s; CPU: the server process, median of %d interleaved rounds; system calls: per request, strace -f, %d traced run(s) of up to %d requests minus a traced start-up; took %s\n",
		sizeName(res.cfg.size), strings.Join(names, ", "), res.cfg.rounds, res.cfg.straceRounds, res.cfg.straceRequests, res.took.Round(time.Second))
	pinned := "server and client not pinned"
	if res.pinned {
		pinned = "server pinned to CPU 0, client to CPU 1"
	}
	ng := "nginx not installed"
	if res.nginx != "" {
		ng = "nginx " + res.nginx + " (sendfile on)"
	}
	fmt.Fprintf(w, "%s; %s\n\n", benchproc.Machine(ng), pinned)
	res.writeTable(w)
	if res.straceErr != nil {
		fmt.Fprintf(w, "\nsystem calls not counted: %v\n", res.straceErr)
	}
}

// writeTable writes the markdown table: per case and server, the I/O system
// calls per request, and the CPU time per GiB of part bodies.
func (res *results) writeTable(w io.Writer) {
	fmt.Fprintf(w, "| ranges | server | %s | other | I/O syscalls | vs net/http | sendfile bytes | server CPU per GiB of parts, ms (quartiles) | vs net/http |\n", strings.Join(columns, " | "))
	fmt.Fprintf(w, "|---|---|%s---|---|---|---|---|---|\n", strings.Repeat("---|", len(columns)))
	for _, cr := range res.cases {
		base := cr.find(sNetHTTP)
		var baseRun tracedRun
		baseTraced := false
		if base != nil {
			baseRun, baseTraced = base.median()
		}
		for _, r := range cr.rows {
			if r.skipped != "" {
				fmt.Fprintf(w, "| %s | %s | skipped: %s |%s\n", cr.c, r.stack, r.skipped, strings.Repeat(" |", len(columns)+5))
				continue
			}
			var cells []string
			if run, ok := r.median(); ok {
				calls, n := run.calls, run.requests
				var other int64
				for _, name := range ioSyscalls {
					if !slices.Contains(columns, name) {
						other += calls[name].Count
					}
				}
				for _, name := range columns {
					cells = append(cells, perRequest(calls[name].Count, n))
				}
				total := calls.Total(ioSyscalls...).Count
				vs := "-"
				if baseTraced {
					vs = ratio(float64(total)/float64(n), float64(baseRun.calls.Total(ioSyscalls...).Count)/float64(baseRun.requests))
				}
				cells = append(cells, perRequest(other, n), perRequest(total, n), vs, perRequest(calls["sendfile"].Sum, n))
			} else {
				for range len(columns) + 4 {
					cells = append(cells, "not traced")
				}
			}
			cpu := perGiB(benchproc.Median(r.cpu), cr.c)
			q1, q3 := benchproc.Quartiles(r.cpu)
			vs := "-"
			if base != nil {
				vs = ratio(float64(cpu), float64(perGiB(benchproc.Median(base.cpu), cr.c)))
			}
			cells = append(cells, fmt.Sprintf("%s (%s-%s)", ms(cpu), ms(perGiB(q1, cr.c)), ms(perGiB(q3, cr.c))), vs)
			fmt.Fprintf(w, "| %s | %s | %s |\n", cr.c, r.stack, strings.Join(cells, " | "))
		}
	}
}

// writeDetails prints every round's CPU time and the median traced run's
// calls, errors and bytes, per case and server.
func (res *results) writeDetails(w io.Writer) {
	for _, cr := range res.cases {
		for _, r := range cr.rows {
			if r.skipped != "" {
				continue
			}
			fmt.Fprintf(w, "\n%s, %s: CPU per round %v;", cr.c, r.stack, r.cpu)
			if run, ok := r.median(); ok {
				fmt.Fprintf(w, " traced %d request(s):", run.requests)
				fmt.Fprint(w, run.calls.Details(ioSyscalls...))
			}
		}
	}
	fmt.Fprintln(w)
}
