package benchproc

import (
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []int64
		want int64
	}{{nil, 0}, {[]int64{7}, 7}, {[]int64{3, 1, 2}, 2}, {[]int64{4, 1, 3, 2}, 2}, {[]int64{10, 1, 4, 3}, 3}} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if got, want := Median([]float64{1, 2, 4, 3}), 2.5; got != want {
		t.Errorf("Median of floats = %v, want %v", got, want)
	}
	in := []time.Duration{3 * time.Second, time.Second, 2 * time.Second}
	if got := Median(in); got != 2*time.Second {
		t.Errorf("Median(%v) = %v, want 2s", in, got)
	}
	if !slices.Equal(in, []time.Duration{3 * time.Second, time.Second, 2 * time.Second}) {
		t.Errorf("Median sorted its argument: %v", in)
	}
}

func TestQuartiles(t *testing.T) {
	for _, tt := range []struct {
		in     []int
		q1, q3 int
	}{{nil, 0, 0}, {[]int{5}, 5, 5}, {[]int{2, 1}, 1, 2}, {[]int{5, 1, 4, 2, 3}, 2, 4}, {[]int{8, 1, 7, 2, 6, 3, 5, 4}, 3, 7}} {
		if q1, q3 := Quartiles(tt.in); q1 != tt.q1 || q3 != tt.q3 {
			t.Errorf("Quartiles(%v) = %d, %d, want %d, %d", tt.in, q1, q3, tt.q1, tt.q3)
		}
	}
}

func TestPerGiB(t *testing.T) {
	for _, tt := range []struct {
		d     time.Duration
		bytes int64
		want  time.Duration
	}{
		{100 * time.Millisecond, 1 << 30, 100 * time.Millisecond},
		{100 * time.Millisecond, 256 << 20, 400 * time.Millisecond},
		{300 * time.Millisecond, 3 << 30, 100 * time.Millisecond},
		{time.Second, 0, 0},
	} {
		if got := PerGiB(tt.d, tt.bytes); got != tt.want {
			t.Errorf("PerGiB(%v, %d) = %v, want %v", tt.d, tt.bytes, got, tt.want)
		}
	}
}

func TestRotated(t *testing.T) {
	s := []string{"a", "b", "c"}
	for round, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}, {"b", "c", "a"}} {
		if got := Rotated(s, round); !slices.Equal(got, want) {
			t.Errorf("Rotated(%v, %d) = %v, want %v", s, round, got, want)
		}
	}
	if got := Rotated([]int(nil), 3); len(got) != 0 {
		t.Errorf("Rotated(nil, 3) = %v", got)
	}
}
