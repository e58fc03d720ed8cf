package benchproc

import (
	"slices"
	"time"
)

// Number is what Median and Quartiles take: durations, counts and rates.
type Number interface {
	~int | ~int64 | ~float64
}

// Median returns the median of xs (the mean of the middle two when their
// number is even, rounded toward zero for integers), or 0 for none.
func Median[T Number](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Quartiles returns the first and third quartiles of xs, the elements at
// len/4 and 3*len/4 of xs sorted, or 0, 0 for none: the spread a median of a
// few rounds comes from.
func Quartiles[T Number](xs []T) (q1, q3 T) {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)/4], s[(3*len(s))/4]
}

// PerGiB scales d, the CPU time spent serving bytes, to one GiB served; it
// returns 0 when bytes is 0.
func PerGiB(d time.Duration, bytes int64) time.Duration {
	if bytes == 0 {
		return 0
	}
	return time.Duration(float64(d) * float64(1<<30) / float64(bytes))
}

// Rotated returns s rotated left by round: round r starts with element
// r mod len(s), so that in interleaved rounds no element always runs first.
func Rotated[T any](s []T, round int) []T {
	n := len(s)
	out := make([]T, n)
	for i := range n {
		out[i] = s[(i+round)%n]
	}
	return out
}
