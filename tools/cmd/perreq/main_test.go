package main

import (
	"testing"
)

func TestParse(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkPerRequest/bare-2         	  200000	      1245 ns/op	     720 B/op	       5 allocs/op
BenchmarkPerRequest/bare-2         	  200000	      1100.5 ns/op	     720 B/op	       5 allocs/op
BenchmarkPerRequest/fastpath/Logger+Metrics+Tracing-2  	  200000	     9567 ns/op	    6371 B/op	      23 allocs/op
BenchmarkFloor/sdk-span            	  200000	      3286 ns/op	    4048 B/op	      13 allocs/op
PASS
`)
	got := map[string]*result{}
	if err := parse(out, got); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		median        float64
		allocs, bytes int64
	}{
		{"PerRequest/bare", 1172.75, 5, 720},
		{"PerRequest/fastpath/Logger+Metrics+Tracing", 9567, 23, 6371},
		{"Floor/sdk-span", 3286, 13, 4048},
	}
	if len(got) != len(tests) {
		t.Errorf("parsed %d benchmarks, want %d", len(got), len(tests))
	}
	for _, tt := range tests {
		r := got[tt.name]
		if r == nil {
			t.Errorf("%s not parsed", tt.name)
			continue
		}
		if r.median() != tt.median || r.allocs != tt.allocs || r.bytes != tt.bytes {
			t.Errorf("%s: median %v allocs %d bytes %d, want %v %d %d", tt.name, r.median(), r.allocs, r.bytes, tt.median, tt.allocs, tt.bytes)
		}
	}
}
