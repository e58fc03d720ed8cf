//go:build linux

package benchproc

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A stat line of a process whose name holds a space and a parenthesis;
	// utime 1234 and stime 56 ticks.
	line := "4242 (my (proc) x) S 1 4242 4242 0 -1 4194560 3000 0 0 0 1234 56 0 0 20 0 9 0 100 1000000 500 18446744073709551615\n"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 12900 * time.Millisecond; got != want {
		t.Errorf("parseStat = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2 3", "4242 no name at all 1 2 3 4 5 6 7 8 9 10 11 12 13", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 56 0"} {
		if d, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %v, no error", bad, d)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat([]byte("123456789 2000 17\n"))
	if err != nil || got != 123456789*time.Nanosecond {
		t.Errorf("parseSchedstat = %v, %v; want 123.456789ms", got, err)
	}
	for _, bad := range []string{"", "\n", "x 1 2"} {
		if d, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("parseSchedstat(%q) = %v, no error", bad, d)
		}
	}
}

func TestOnCPU(t *testing.T) {
	if got, want := OnCPU(1, "wrk", "-t1"), []string{"taskset", "-c", "1", "wrk", "-t1"}; !slices.Equal(got, want) {
		t.Errorf("OnCPU = %q, want %q", got, want)
	}
}

// TestProcCPUSelf checks that this process's CPU time reads and never goes
// back; it asserts nothing about how much.
func TestProcCPUSelf(t *testing.T) {
	a, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a < 0 || b < a {
		t.Errorf("CPU time %v then %v", a, b)
	}
	if p, err := Descendant(os.Getpid()); err != nil || p != os.Getpid() {
		t.Errorf("Descendant of a process without children = %d, %v; want itself", p, err)
	}
}
