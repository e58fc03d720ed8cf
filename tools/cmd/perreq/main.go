// Command perreq measures what fastpath's middlewares cost per request
// against the peers that emit the same signals, and prints the README's
// table:
//
//	go run ./tools/cmd/perreq [-count 6] [-benchtime 200000x]
//
// It runs tools/perrequest's BenchmarkPerRequest (fastpath, otelhttp and
// httplog in one run, on one harness) and middleware's BenchmarkFloor (what
// the SDK and slog cost on their own), in -count interleaved rounds, and
// reports medians. Overheads are above the bare chi router of the same run.
// Run it from the repository root.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

func main() {
	count := flag.Int("count", 6, "runs of each benchmark; the table shows medians")
	benchtime := flag.String("benchtime", "200000x", "go test -benchtime for each run")
	flag.Parse()
	if err := run(os.Stdout, *count, *benchtime); err != nil {
		fmt.Fprintln(os.Stderr, "perreq:", err)
		os.Exit(1)
	}
}

// rows are the table's lines: the benchmark each comes from, its label, and
// the peer it is compared with.
var rows = []struct {
	bench, label, peer string
}{
	{"PerRequest/bare", "bare chi router", ""},
	{"PerRequest/otelhttp", "otelhttp `NewMiddleware` (metrics + traces)", ""},
	{"PerRequest/fastpath/Metrics+Tracing", "fastpath `Metrics` + `Tracing`", "PerRequest/otelhttp"},
	{"PerRequest/fastpath/Logger+Metrics+Tracing", "fastpath `Logger` + `Metrics` + `Tracing`", "PerRequest/otelhttp"},
	{"PerRequest/httplog", "httplog v3 `RequestLogger` (SchemaOTEL, slog JSON)", ""},
	{"PerRequest/fastpath/Logger", "fastpath `Logger`", "PerRequest/httplog"},
	{"Floor/sdk-span", "*floor*: one SDK server span with the conventions' attributes", ""},
	{"Floor/sdk-metrics", "*floor*: the SDK measurements Metrics makes", ""},
	{"Floor/slog-json", "*floor*: one slog JSON record with Logger's keys", ""},
}

// result is what one benchmark measured over its runs.
type result struct {
	ns     []float64
	allocs int64
	bytes  int64
}

func (r *result) median() float64 {
	s := slices.Clone(r.ns)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(w io.Writer, count int, benchtime string) error {
	results := map[string]*result{}
	// Round by round, so a machine that slows down part way through slows
	// every stack alike.
	for range count {
		for _, pkg := range []struct{ dir, pattern string }{
			{"./tools/perrequest", "PerRequest"},
			{"./middleware", "Floor"},
		} {
			out, err := benchmark(pkg.dir, pkg.pattern, benchtime)
			if err != nil {
				return err
			}
			if err := parse(out, results); err != nil {
				return err
			}
		}
	}
	for _, r := range rows {
		if results[r.bench] == nil {
			return fmt.Errorf("no result for Benchmark%s", r.bench)
		}
	}
	bare := results["PerRequest/bare"].median()
	fmt.Fprintf(w, "per request, medians of %d runs of %s; %s\n\n", count, benchtime, testutil.Machine())
	fmt.Fprintln(w, "| stack | time | above the bare router | allocs | bytes | vs its peer |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		res := results[r.bench]
		m := res.median()
		above, vs := "", ""
		if !strings.HasPrefix(r.bench, "Floor/") && r.bench != "PerRequest/bare" {
			above = us(m - bare)
		}
		if r.peer != "" {
			vs = fmt.Sprintf("**%.2fx** %s", (m-bare)/(results[r.peer].median()-bare), peerName(r.peer))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s |\n", r.label, us(m), above, res.allocs, res.bytes, vs)
	}
	return nil
}

func peerName(bench string) string {
	return strings.TrimPrefix(bench, "PerRequest/")
}

func us(ns float64) string { return fmt.Sprintf("%.2f µs", ns/1000) }

// benchmark runs go test -bench in dir from the repository root.
func benchmark(dir, pattern, benchtime string) ([]byte, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-benchmem",
		"-benchtime", benchtime, "-count", "1", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test %s: %v\n%s%s", dir, err, out, stderr.Bytes())
	}
	return out, nil
}

// line matches a benchmark result such as
// "BenchmarkFloor/sdk-span-2  200000  3286 ns/op  4048 B/op  13 allocs/op".
var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op\s+(\d+) B/op\s+(\d+) allocs/op`)

func parse(out []byte, results map[string]*result) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ns, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return err
		}
		b, _ := strconv.ParseInt(m[3], 10, 64)
		a, _ := strconv.ParseInt(m[4], 10, 64)
		r := results[m[1]]
		if r == nil {
			r = &result{}
			results[m[1]] = r
		}
		r.ns = append(r.ns, ns)
		r.bytes, r.allocs = b, a
	}
	return sc.Err()
}
