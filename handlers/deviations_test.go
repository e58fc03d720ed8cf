package handlers

import (
	"math"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// This file encodes, for the differential tests, exactly the deviations
// from http.ServeContent that the package documentation lists (# Where this
// package differs from http.ServeContent). netHTTPEquivalent rewrites a
// request into the one for which http.ServeContent gives the answer this
// package must give; any other difference fails the tests. It is written
// from the documented rules with regular expressions and math/big, not from
// the package's parser, so a mistake in one does not hide in the other.
//
// It covers requests whose fields have one field line each; the rules for
// repeated lines are table-tested.

var (
	// entity-tag and "*" / #entity-tag (RFC 9110, sections 8.8.3 and 5.6.1),
	// matched against latin1 (one rune per byte), so obs-text is a range.
	entityTagRE = `(?:W/)?"[\x21\x23-\x7e\x{80}-\x{ff}]*"`
	tagListRE   = regexp.MustCompile(`^(?:\*|[ \t,]*(?:` + entityTagRE + `(?:[ \t]*,[ \t,]*` + entityTagRE + `)*)?[ \t,]*)$`)
	oneTagRE    = regexp.MustCompile(`^` + entityTagRE + `$`)
	// range-spec of the bytes unit (RFC 9110, section 14.1.1).
	intRangeRE    = regexp.MustCompile(`^([0-9]+)-([0-9]*)$`)
	suffixRangeRE = regexp.MustCompile(`^-([0-9]+)$`)
	tokenRE       = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	bigNumberRE   = regexp.MustCompile(`[0-9]+`)
)

// latin1 maps each byte of s to the rune of the same value.
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// deliverable reports whether v could be a field value as net/http's server
// hands it to a handler: no control characters but HTAB, no DEL, and no
// whitespace at either end (RFC 9110, section 5.5). The differential tests
// feed only such values.
func deliverable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return v == strings.Trim(v, " \t")
}

// netHTTPEquivalent returns the request to give http.ServeContent for the
// answer this package must give to r, for a representation of size bytes
// served with at most maxRanges ranges (<= 0: no bound), and whether a 416
// must also carry "Content-Range: bytes */size" (deviation 7).
func netHTTPEquivalent(r *http.Request, size int64, maxRanges int) (ref *http.Request, invalid416 bool) {
	ref = r.Clone(r.Context())
	h := ref.Header
	const noTag = `"no-such-tag"` // a valid tag that matches nothing

	// 5. If-Match or If-None-Match values that are not "*" / #entity-tag.
	for _, k := range []string{"If-Match", "If-None-Match"} {
		if v := h.Get(k); v != "" && !tagListRE.MatchString(latin1(v)) {
			h.Set(k, noTag)
		}
	}
	rv := h.Get("Range")
	if rv == "" {
		return ref, false
	}
	// 4. Range for methods other than GET and HEAD.
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Del("Range")
		return ref, false
	}
	// 6. An If-Range entity tag with anything after it.
	if ir := h.Get("If-Range"); (strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, `W/"`)) && !oneTagRE.MatchString(latin1(ir)) {
		h.Set("If-Range", noTag)
	}
	unit, set, ok := strings.Cut(rv, "=")
	switch {
	case !ok || !tokenRE.MatchString(unit):
		// 7. Invalid: 416 as net/http, plus Content-Range.
		h.Set("Range", "bytes=x")
		return ref, true
	case !strings.EqualFold(unit, "bytes"):
		// 2. A range unit other than bytes is ignored.
		h.Del("Range")
		return ref, false
	}
	// 3. "Bytes", "BYTES": the same unit.
	var kept []string
	var satisfiable, zeroSuffixes int
	specs := 0
	maxInt := big.NewInt(math.MaxInt64)
	for elem := range strings.SplitSeq(set, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		specs++
		var first, last *big.Int
		if m := intRangeRE.FindStringSubmatch(elem); m != nil {
			first, _ = new(big.Int).SetString(m[1], 10)
			if m[2] != "" {
				last, _ = new(big.Int).SetString(m[2], 10)
				if last.Cmp(first) < 0 {
					// 8 (net/http agrees): last-pos below first-pos.
					h.Set("Range", "bytes=x")
					return ref, true
				}
			}
			if first.Cmp(big.NewInt(size)) < 0 {
				satisfiable++
			}
		} else if m := suffixRangeRE.FindStringSubmatch(elem); m != nil {
			n, _ := new(big.Int).SetString(m[1], 10)
			if n.Sign() == 0 {
				// 1. A suffix of length 0 is unsatisfiable: drop it.
				zeroSuffixes++
				continue
			}
			satisfiable++
		} else {
			// 8. Not a range-spec of the grammar: whitespace inside,
			// signs, anything else.
			h.Set("Range", "bytes=x")
			return ref, true
		}
		// 9. Numbers beyond int64 stand for "past any end".
		elem = bigNumberRE.ReplaceAllStringFunc(elem, func(d string) string {
			if n, _ := new(big.Int).SetString(d, 10); n.Cmp(maxInt) > 0 {
				return strconv.FormatInt(math.MaxInt64, 10)
			}
			return d
		})
		kept = append(kept, elem)
	}
	switch {
	case specs == 0:
		h.Set("Range", "bytes=") // ignored by both
	case size == 0:
		// 10. Ranges of an empty representation are ignored.
		h.Del("Range")
	case satisfiable == 0 && zeroSuffixes > 0:
		// 1. Nothing satisfiable left: 416, as for a range past the end.
		h.Set("Range", "bytes="+strconv.FormatInt(size, 10)+"-")
	case maxRanges > 0 && satisfiable > maxRanges:
		// 11. More ranges than the bound: the whole representation.
		h.Del("Range")
	default:
		h.Set("Range", "bytes="+strings.Join(kept, ","))
	}
	return ref, false
}

// expectFromNetHTTP adjusts http.ServeContent's response to ref for
// deviation 7: every 416 states the size.
func expectFromNetHTTP(res response, invalid416 bool, size int64) response {
	if invalid416 && res.status == http.StatusRequestedRangeNotSatisfiable && res.header.Get("Content-Range") == "" {
		res.header = res.header.Clone()
		res.header.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
	}
	return res
}
