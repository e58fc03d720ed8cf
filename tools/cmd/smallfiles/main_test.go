//go:build linux

package main

import (
	"strings"
	"testing"
)

const wrkOutput = `Running 5s test @ http://127.0.0.1:18080/files/small.bin
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    18.87ms   33.05ms 297.30ms   91.04%
    Req/Sec     3.54k     1.62k    6.63k    64.15%
  40123 requests in 12.01s, 165.91MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:   3340.66
Transfer/sec:     13.81MB
`

func TestParseWrk(t *testing.T) {
	w, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	if want := (wrkResult{Rate: 3340.66, Requests: 40123, Non2xx: 17, Errors: 7}); w != want {
		t.Errorf("parseWrk = %+v, want %+v", w, want)
	}
	clean := strings.NewReplacer("  Socket errors: connect 0, read 2, write 1, timeout 4\n", "", "  Non-2xx or 3xx responses: 17\n", "").Replace(wrkOutput)
	if w, err := parseWrk([]byte(clean)); err != nil || w != (wrkResult{Rate: 3340.66, Requests: 40123}) {
		t.Errorf("parseWrk of a clean run = %+v, %v", w, err)
	}
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Error("parseWrk of a failed run: no error")
	}
}

func TestTable(t *testing.T) {
	rs := []*result{
		{Desc: "nginx 1.22.1 (1 worker, sendfile on, access_log off)", Rates: []float64{25000, 24000, 26500}, Ratios: []float64{1.25, 1.30, 1.27}, CPU: []float64{30, 31, 29}, CPURat: []float64{0.6, 0.62, 0.58}},
		{Desc: "skipped", Skipped: "not installed"},
		{Desc: "bare http.FileServer", Rates: []float64{19600.4, 18000, 20000}, Ratios: []float64{1, 1, 1}, CPU: []float64{50.4, 49, 51}, CPURat: []float64{1, 1, 1}},
		{Desc: "examples/fileserver as shipped", Rates: []float64{1000, 10400, 9999.5, 12000}, Ratios: []float64{0.5, 0.52, 0.6, 0.7}, CPU: []float64{90, 100, 95, 101}, CPURat: []float64{1.8, 1.9, 2, 2.1}},
	}
	var b strings.Builder
	writeTable(&b, rs)
	want := `| stack | req/s | vs bare http.FileServer | server CPU per request | vs bare http.FileServer |
|---|---:|---:|---:|---:|
| nginx 1.22.1 (1 worker, sendfile on, access_log off) | 25,000 | 1.27x | 30 µs | 0.60x |
| bare http.FileServer | 19,600 | 1.00x | 50 µs | 1.00x |
| examples/fileserver as shipped | 10,200 | 0.56x | 98 µs | 1.95x |
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestThousands(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 999.4: "999", 999.5: "1,000", 1234567: "1,234,567", 100000: "100,000"} {
		if got := thousands(x); got != want {
			t.Errorf("thousands(%v) = %q, want %q", x, got, want)
		}
	}
}
