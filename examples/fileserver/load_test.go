package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

var (
	loadDuration = flag.Duration("load", 0, "run TestLoad for this long (0: a short smoke run of a fixed number of requests)")
	loadClients  = flag.Int("load.clients", 200, "concurrent clients for -load")
	loadFileSize = flag.Int("load.size", 256<<20, "size of the large file for -load, in bytes")
)

// loadKind is one kind of request in the load mix.
type loadKind struct {
	name   string
	weight int
}

var loadMix = []loadKind{
	{"full", 10}, {"range", 25}, {"multirange", 10}, {"head", 10},
	{"notmodified", 15}, {"notfound", 10}, {"disconnect", 20},
}

// loadResult is one request as the client saw it.
type loadResult struct {
	kind     string
	id       string
	status   int
	received int64 // body bytes received
	latency  time.Duration
	err      error // unexpected: a transport error or wrong bytes
}

// TestLoad runs the example server under concurrent clients mixing full
// downloads of a large file, single and multi-range requests, HEAD, 304s,
// 404s and clients that disconnect mid-transfer, then checks: no 5xx, no
// panic, every completed body exact, bytes recorded equal to bytes received,
// goroutines back to their baseline, and a heap that does not grow with the
// bytes served. By default it is a smoke run of a fixed number of requests
// (the same mix every time, however fast the machine); the full run is
//
//	go test ./examples/fileserver -run TestLoad -load 60s -v
func TestLoad(t *testing.T) {
	duration, clients, size := *loadDuration, *loadClients, *loadFileSize
	perClient := 0 // requests per client; 0 means until duration is over
	if duration == 0 {
		clients, size, perClient = 20, 16<<20, 8
	}
	root := t.TempDir()
	data := testutil.WriteRandomFile(t, root, "big.bin", size)
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	e := startExample(t, root)
	baseline := e.goroutines(t)

	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	etagResp, err := client.Head(e.base + "/files/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	etag := etagResp.Header.Get("ETag")

	var (
		mu      sync.Mutex
		results []loadResult
		seq     atomic.Int64
		peakG   atomic.Int64
	)
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if perClient == 0 {
		ctx, cancel = context.WithTimeout(ctx, duration)
	}
	defer cancel()
	begun := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 99))
			for n := 0; ctx.Err() == nil && (perClient == 0 || n < perClient); n++ {
				r := loadRequest(client, e.base, etag, data, crc, rng, fmt.Sprintf("load-%d", seq.Add(1)))
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	// Sample the server's goroutines while the load runs.
	sampling, stopSampling := context.WithCancel(ctx)
	go func() {
		for sampling.Err() == nil {
			if n := int64(e.goroutinesOrZero()); n > peakG.Load() {
				peakG.Store(n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	wg.Wait()
	stopSampling()
	duration = time.Since(begun)
	tr.CloseIdleConnections()
	after := e.settle(t)
	goroutineDump := e.get(t, "/debug/pprof/goroutine?debug=1")
	heap := e.memStat(t, "HeapInuse")
	peakRSS := e.procStatus(t, "VmHWM")
	e.stop(t)
	recs := e.requestLogs(t)

	// Check every request against its record.
	var (
		served, sent, completed, aborted int64
		byKind                           = map[string][]time.Duration{}
		errs                             []string
	)
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: %v", r.kind, r.id, r.err))
			continue
		}
		if r.status >= 500 {
			errs = append(errs, fmt.Sprintf("%s %s: status %d", r.kind, r.id, r.status))
		}
		m, ok := recs[r.id]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s %s: no log record", r.kind, r.id))
			continue
		}
		body, sf := num(m, "http.response.body.size"), num(m, "fastpath.response.sendfile.size")
		served += body
		sent += sf
		if r.kind == "disconnect" {
			aborted++
			if body < r.received || (m["error.type"] != "client_aborted" && body != int64(size)) {
				errs = append(errs, fmt.Sprintf("disconnect %s: recorded %v, client read %d", r.id, m, r.received))
			}
			continue
		}
		completed++
		byKind[r.kind] = append(byKind[r.kind], r.latency)
		if body != r.received || m["error.type"] != nil || num(m, "http.response.status_code") != int64(r.status) {
			errs = append(errs, fmt.Sprintf("%s %s: recorded %v, client got %d with %d bytes", r.kind, r.id, m, r.status, r.received))
		}
	}
	for _, m := range e.logs(t) {
		if s := fmt.Sprint(m); strings.Contains(s, "panic") || num(m, "http.response.status_code") >= 500 {
			errs = append(errs, fmt.Sprintf("server logged %v", m))
		}
	}

	var all []time.Duration
	for _, ds := range byKind {
		all = append(all, ds...)
	}
	t.Logf("load: %d clients for %v, a %d MiB file", clients, duration, size>>20)
	t.Logf("requests: %d completed, %d abandoned by their clients (%.0f/s), errors: %d",
		completed, aborted, float64(completed+aborted)/duration.Seconds(), len(errs))
	t.Logf("bytes served: %.2f GiB (%.0f MiB/s), by sendfile: %.2f%%",
		float64(served)/(1<<30), float64(served)/(1<<20)/duration.Seconds(), 100*float64(sent)/float64(max(served, 1)))
	t.Logf("latency of completed requests: p50 %v, p99 %v", percentile(all, 50), percentile(all, 99))
	for _, k := range loadMix {
		if ds := byKind[k.name]; len(ds) > 0 {
			t.Logf("  %-11s %6d requests, p50 %v, p99 %v", k.name, len(ds), percentile(ds, 50), percentile(ds, 99))
		}
	}
	t.Logf("server: goroutines %d before, peak %d, %d after; heap in use %.1f MiB after; peak RSS %.1f MiB",
		baseline, peakG.Load(), after, float64(heap)/(1<<20), float64(peakRSS)/(1<<20))

	if len(errs) > 0 {
		t.Errorf("%d errors, the first: %s", len(errs), strings.Join(errs[:min(len(errs), 10)], "\n"))
	}
	if after > baseline {
		t.Errorf("%d goroutines after the load, %d before:\n%s", after, baseline, goroutineDump)
	}
	// The server copies nothing per byte: its heap must stay far below the
	// bytes it served, whatever the run's length.
	if heap > 64<<20 {
		t.Errorf("heap in use %d MiB after serving %d MiB", heap>>20, served>>20)
	}
	if completed == 0 || aborted == 0 {
		t.Errorf("%d completed and %d abandoned requests: the mix did not run", completed, aborted)
	}
}

func (e *child) goroutinesOrZero() int {
	resp, err := debugClient.Get(e.debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	first, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	return n
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}

// loadRequest makes one request of a kind drawn from loadMix and checks the
// bytes it gets.
func loadRequest(client *http.Client, base, etag string, data []byte, crc uint32, rng *rand.Rand, id string) loadResult {
	total := 0
	for _, k := range loadMix {
		total += k.weight
	}
	pick := rng.IntN(total)
	var kind string
	for _, k := range loadMix {
		if pick -= k.weight; pick < 0 {
			kind = k.name
			break
		}
	}
	size := int64(len(data))
	method, path := "GET", "/files/big.bin"
	hdr := http.Header{"X-Request-Id": {id}}
	var ranges [][2]int64
	switch kind {
	case "range":
		start := rng.Int64N(size)
		end := min(size, start+1+rng.Int64N(4<<20))
		ranges = [][2]int64{{start, end}}
	case "multirange":
		for range 2 + rng.IntN(3) {
			start := rng.Int64N(size)
			ranges = append(ranges, [2]int64{start, min(size, start+1+rng.Int64N(1<<20))})
		}
		slices.SortFunc(ranges, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		ranges = mergeRanges(ranges)
	case "head":
		method = "HEAD"
	case "notmodified":
		hdr.Set("If-None-Match", etag)
	case "notfound":
		path = fmt.Sprintf("/files/missing-%x", rng.Uint64())
	}
	if len(ranges) > 0 {
		var spec []string
		for _, r := range ranges {
			spec = append(spec, fmt.Sprintf("%d-%d", r[0], r[1]-1))
		}
		hdr.Set("Range", "bytes="+strings.Join(spec, ","))
	}
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header = hdr
	res := loadResult{kind: kind, id: id}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	if kind == "disconnect" {
		// Read part of the file, then walk away; closing the body early
		// makes the transport close the connection.
		res.received, _ = io.CopyN(io.Discard, resp.Body, rng.Int64N(8<<20))
		return res
	}
	if kind == "full" {
		// Stream the whole file through a checksum rather than hold it.
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		res.received, err = io.Copy(h, resp.Body)
		res.latency = time.Since(start)
		switch {
		case err != nil:
			res.err = err
		case resp.StatusCode != 200:
			res.err = fmt.Errorf("status %d, want 200", resp.StatusCode)
		case res.received != size || h.Sum32() != crc:
			res.err = errors.New("wrong file bytes")
		}
		return res
	}
	body, err := io.ReadAll(resp.Body)
	res.latency = time.Since(start)
	res.received = int64(len(body))
	if err != nil {
		res.err = err
		return res
	}
	res.err = checkLoadBody(kind, resp, body, data, ranges)
	return res
}

// mergeRanges merges sorted ranges that overlap or touch, so the server
// answers them as the parts asked for.
func mergeRanges(rs [][2]int64) [][2]int64 {
	out := rs[:1]
	for _, r := range rs[1:] {
		if last := &out[len(out)-1]; r[0] <= last[1] {
			last[1] = max(last[1], r[1])
		} else {
			out = append(out, r)
		}
	}
	return out
}

func checkLoadBody(kind string, resp *http.Response, body, data []byte, ranges [][2]int64) error {
	want := map[string]int{"head": 200, "notmodified": 304, "notfound": 404, "range": 206, "multirange": 206}[kind]
	if kind == "multirange" && len(ranges) == 1 {
		want = 206
	}
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	switch {
	case kind == "range" || len(ranges) == 1:
		if !bytes.Equal(body, data[ranges[0][0]:ranges[0][1]]) {
			return errors.New("wrong range bytes")
		}
	case kind == "multirange":
		_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil {
			return err
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for _, r := range ranges {
			p, err := mr.NextPart()
			if err != nil {
				return err
			}
			got, err := io.ReadAll(p)
			if err != nil || !bytes.Equal(got, data[r[0]:r[1]]) {
				return fmt.Errorf("wrong part %d-%d", r[0], r[1])
			}
		}
	case kind == "head" || kind == "notmodified":
		if len(body) != 0 {
			return fmt.Errorf("%d body bytes", len(body))
		}
	}
	return nil
}
