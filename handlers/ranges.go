package handlers

import (
	"math"
	"strconv"
	"strings"

	"github.com/fastpath-go/fastpath/internal/httpsyntax"
)

// byteRange is a satisfiable byte range of a representation: length bytes
// from offset start, length at least 1.
type byteRange struct {
	start, length int64
}

// end returns the last-pos of r, as Content-Range states it.
func (r byteRange) end() int64 { return r.start + r.length - 1 }

// rangeVerdict is what a Range field asks of the server.
type rangeVerdict int

const (
	// rangeIgnore: send the whole representation with 200 OK.
	rangeIgnore rangeVerdict = iota
	// rangeInvalid: the ranges-specifier is invalid; answer 416.
	rangeInvalid
	// rangeUnsatisfiable: no range in the set is satisfiable; answer 416.
	rangeUnsatisfiable
	// rangeSatisfiable: send the ranges with 206 Partial Content.
	rangeSatisfiable
)

// parseRange interprets the value of a Range field (RFC 9110, section 14.2)
// for a representation of size bytes, and returns the satisfiable ranges in
// the order asked. maxRanges bounds their number (maxRanges <= 0: no bound).
//
// The grammar is section 14.1.1's:
//
//	ranges-specifier = range-unit "=" range-set
//	range-set        = 1#range-spec
//	range-spec       = int-range / suffix-range / other-range
//	int-range        = first-pos "-" [ last-pos ]
//	suffix-range     = "-" suffix-length
//
// where the positions and the suffix length are 1*DIGIT, of any length.
func parseRange(value string, size int64, maxRanges int) ([]byteRange, rangeVerdict) {
	unit, set, ok := strings.Cut(value, "=")
	if !ok || !httpsyntax.IsToken(unit) {
		return nil, rangeInvalid
	}
	// Range unit names are case-insensitive (section 14.1), and a server
	// must ignore a range unit it does not understand (section 14.2).
	if !strings.EqualFold(unit, "bytes") {
		return nil, rangeIgnore
	}
	var (
		ranges []byteRange
		count  int   // satisfiable ranges, also those not kept
		total  int64 // their total length, saturated
		specs  int   // non-empty range-specs
	)
	for elem := range strings.SplitSeq(set, ",") {
		// Empty list elements do not count (section 5.6.1).
		if elem = trimOWS(elem); elem == "" {
			continue
		}
		specs++
		first, last, ok := strings.Cut(elem, "-")
		if !ok {
			return nil, rangeInvalid
		}
		var r byteRange
		switch {
		case first == "":
			// suffix-range: the last suffix-length bytes. One of length 0
			// is unsatisfiable (section 14.1.2).
			n, ok := parseDigits(last)
			if !ok {
				return nil, rangeInvalid
			}
			if n == 0 || size == 0 {
				continue
			}
			n = min(n, size)
			r = byteRange{start: size - n, length: n}
		default:
			// int-range: invalid when last-pos is less than first-pos
			// (section 14.1.1); unsatisfiable when first-pos is not below
			// the size; a last-pos at or past the end means the end
			// (section 14.1.2).
			start, ok := parseDigits(first)
			if !ok {
				return nil, rangeInvalid
			}
			end := size - 1
			if last != "" {
				e, ok := parseDigits(last)
				if !ok || compareDigits(first, last) > 0 {
					return nil, rangeInvalid
				}
				end = min(e, end)
			}
			if start >= size {
				continue
			}
			r = byteRange{start: start, length: end - start + 1}
		}
		count++
		total = min(total, math.MaxInt64-r.length) + r.length
		if maxRanges <= 0 || len(ranges) <= maxRanges {
			ranges = append(ranges, r)
		}
	}
	switch {
	case specs == 0:
		// "bytes=" has no range-spec at all: an invalid range-set that
		// section 14.2 lets a server ignore, as net/http does.
		return nil, rangeIgnore
	case size == 0:
		// No byte range of an empty representation is satisfiable
		// (section 14.1.2), and a server may ignore Range for one
		// (section 14.2): send the empty representation.
		return nil, rangeIgnore
	case count == 0:
		return nil, rangeUnsatisfiable
	case maxRanges > 0 && count > maxRanges:
		// Many ranges: section 14.2 lets a server ignore such a set,
		// since each part costs a header (see WithMaxRanges).
		return nil, rangeIgnore
	case total > size:
		// Ranges that add up to more than the whole representation
		// overlap (section 14.2 lets a server ignore those): sending the
		// whole costs less, and it is what http.ServeContent does.
		return nil, rangeIgnore
	}
	return ranges, rangeSatisfiable
}

// parseDigits parses 1*DIGIT, saturating at math.MaxInt64: every position
// that large is past the end of any file, and every suffix that long covers
// all of it, so nothing is lost.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// compareDigits compares two strings of decimal digits as numbers, whatever
// their length, so that a last-pos below its first-pos is found even when
// both exceed int64.
func compareDigits(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// contentRange returns the Content-Range value of a part (RFC 9110, section
// 14.4): "bytes first-last/complete-length".
func contentRange(r byteRange, size int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.end(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

// unsatisfiedRange returns the Content-Range value of a 416 response (RFC
// 9110, sections 14.4 and 15.5.17): "bytes */complete-length".
func unsatisfiedRange(size int64) string {
	return "bytes */" + strconv.FormatInt(size, 10)
}
