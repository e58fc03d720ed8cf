//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/vmtest"
)

// The stacks compared, in table order; crypto/tls is the baseline.
const (
	sCryptoTLS = "net/http + crypto/tls"
	sKTLS      = "fastpath + ktls"
	sNginx     = "nginx + OpenSSL kTLS"
)

var stacks = []string{sCryptoTLS, sKTLS, sNginx}

// nginxTLSDirectives make nginx speak TLS 1.3, as the client does, and let
// OpenSSL hand the session to the kernel, after which nginx sends files by
// SSL_sendfile, that is sendfile(2) (nginx 1.21.4+ with OpenSSL 3.0+
// built with kTLS, which Debian's are).
var nginxTLSDirectives = []string{"ssl_protocols TLSv1.3;", "ssl_conf_command Options KTLS;"}

// ioSyscalls are the system calls traced: every one that can move request
// or response bytes.
var ioSyscalls = []string{"read", "write", "writev", "sendfile", "splice", "pread64",
	"readv", "pwrite64", "recvfrom", "sendto", "recvmsg", "sendmsg", "copy_file_range"}

const fileName = "big.bin"

// Where a run happens.
const (
	whereLocal = "local" // on the kernel this program runs on
	whereGuest = "guest" // in a QEMU guest booting Debian's kernel
)

// resultPrefix starts the line that carries a run's results as JSON, which
// the guest prints for the host to read from its console.
const resultPrefix = "TLSBENCH-RESULT "

type config struct {
	where        []string
	size         int64
	downloads    int
	rounds       int
	straceRounds int
	guestMemory  int
	guestTimeout time.Duration
	progress     io.Writer
	// measured, when set, receives the run once its CPU rounds are done,
	// before the system calls are counted: the guest prints it, so that a
	// guest that runs out of time still leaves its CPU figures.
	measured func(*place)
}

// place is what one run, local or in the guest, measured.
type place struct {
	Where     string
	Machine   string // benchproc.Machine's line where the run happened
	Emulation string // for the guest: what emulated its CPU, and on what
	Kernel    string // for the guest: the kernel package booted
	Nginx     string // nginx's version, "" when it is not installed
	Pinned    bool
	StraceErr string // why system calls were not counted
	LoadStart string // the 1-minute load average of the machine running
	LoadEnd   string // the benchmark (the host, for the guest), at start and end
	Rows      []*row
	Took      time.Duration
	Boot      time.Duration // for the guest: from QEMU's start to the program's
}

// row is what was measured of one stack.
type row struct {
	Stack    string
	Skipped  string          // why the stack could not run here
	CPU      []time.Duration // the server's CPU time per round, over the downloads
	Served   int64           // body bytes per round, every one checked
	TLS      string          // TLS version and cipher suite
	KernelTX int64           // kernel TLS sockets during the downloads (-1: no tls_stat)
	KernelRX int64
	Child    *childReport // the Go servers' own account of the last round
	Traced   []tracedRun  // per strace round
}

// tracedRun is the system calls of one traced run of Downloads downloads,
// the traced start-up subtracted.
type tracedRun struct {
	Calls     strace.Summary
	Downloads int
}

func main() {
	child := flag.String("child", "", "internal: serve as this stack")
	file := flag.String("file", "", "internal: the file the child serves")
	listen := flag.String("listen", "", "internal: the address the child listens on")
	certFile := flag.String("cert", "", "internal: the child's certificate (PEM)")
	keyFile := flag.String("key", "", "internal: the child's key (PEM)")
	asJSON := flag.Bool("json", false, "print the results as one JSON line (what the guest's run does)")
	where := flag.String("where", "local,guest", "where to run: local (this machine's kernel) and guest (Debian's kernel under QEMU), comma separated")
	size := flag.Int64("size", 64<<20, "size of the file downloaded, in bytes (the README's figures: 268435456)")
	downloads := flag.Int("downloads", 1, "downloads of the file per round")
	rounds := flag.Int("rounds", 3, "interleaved rounds for the CPU median")
	straceRounds := flag.Int("strace-rounds", 1, "traced runs per stack for the system calls (0: none)")
	guestMemory := flag.Int("guest-memory", 2048, "the guest's memory, in MiB (the file lives in it)")
	guestTimeout := flag.Duration("guest-timeout", time.Hour, "bound on the guest's whole run")
	verbose := flag.Bool("v", false, "also print every round's CPU time and every traced call")
	flag.Parse()
	if *child != "" {
		if err := serve(*child, *file, *listen, *certFile, *keyFile); err != nil {
			fmt.Fprintln(os.Stderr, "tlsbench child:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{where: strings.Split(*where, ","), size: *size, downloads: *downloads, rounds: *rounds,
		straceRounds: *straceRounds, guestMemory: *guestMemory, guestTimeout: *guestTimeout, progress: os.Stderr}
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "tlsbench:", err)
		os.Exit(2)
	}
	if *asJSON {
		cfg.measured = func(p *place) { printResults([]*place{p}) }
	}
	places, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsbench:", err)
		os.Exit(1)
	}
	if *asJSON {
		printResults(places)
		return
	}
	for _, p := range places {
		p.write(os.Stdout, cfg)
		if *verbose {
			p.writeDetails(os.Stdout)
		}
	}
}

// printResults prints the result line the host reads from the guest's
// output; the last one printed counts.
func printResults(places []*place) {
	b, err := json.Marshal(places)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsbench:", err)
		os.Exit(1)
	}
	fmt.Println(resultPrefix + string(b))
}

func (cfg config) check() error {
	for _, w := range cfg.where {
		if w != whereLocal && w != whereGuest {
			return fmt.Errorf("-where %q: want local, guest or both", w)
		}
	}
	if cfg.size < 1 || cfg.downloads < 1 || cfg.rounds < 1 || cfg.straceRounds < 0 {
		return errors.New("-size, -downloads and -rounds must be positive, -strace-rounds not negative")
	}
	return nil
}

// run measures where cfg says. A guest that cannot run here (QEMU or the
// kernel package missing) is a place with every row skipped and the reason.
func run(cfg config) ([]*place, error) {
	var places []*place
	if slices.Contains(cfg.where, whereLocal) {
		p, err := runLocal(cfg)
		if err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
		places = append(places, p)
	}
	if slices.Contains(cfg.where, whereGuest) {
		p, err := runGuest(cfg)
		if ue, ok := errors.AsType[*vmtest.UnavailableError](err); ok {
			p = &place{Where: whereGuest}
			for _, s := range stacks {
				p.Rows = append(p.Rows, &row{Stack: s, Skipped: ue.Error()})
			}
		} else if err != nil {
			return nil, fmt.Errorf("guest: %w", err)
		}
		places = append(places, p)
	}
	return places, nil
}

// parseResults reads the last result line in a run's output: the guest
// prints one when its CPU rounds are done and one at the end.
func parseResults(out string) ([]*place, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	last, found := "", false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if js, ok := strings.CutPrefix(line, resultPrefix); ok {
			last, found = js, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, errors.New("no result line in the output")
	}
	var places []*place
	if err := json.Unmarshal([]byte(last), &places); err != nil {
		return nil, fmt.Errorf("the result line: %w", err)
	}
	return places, nil
}
