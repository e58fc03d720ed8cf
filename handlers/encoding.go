package handlers

import (
	"net/http"
	"net/textproto"
	"strings"
)

// coding is a content coding with a precompressed sidecar file.
type coding struct {
	name string // Content-Encoding token
	ext  string // sidecar suffix
}

// knownCodings are the content codings FileServer can serve precompressed,
// in the default server preference order.
var knownCodings = []coding{
	{"br", ".br"},
	{"zstd", ".zst"},
	{"gzip", ".gz"},
}

// maxCodings bounds the configured codings (each known one at most once).
const maxCodings = 3

// acceptWeights returns, for each coding in codings, the weight (qvalue in
// thousandths, 0 to 1000) that the Accept-Encoding field values give it
// (RFC 9110, section 12.5.3): its own entry's weight if listed, else the
// weight of "*" if listed, else 0. Codings are compared case-insensitively,
// "x-gzip" counts as "gzip" (RFC 9110, section 8.4.1.3), and an entry with a
// malformed qvalue gets weight 0. When a coding is listed more than once the
// first entry counts.
func acceptWeights(values []string, codings []coding) (weights [maxCodings]int) {
	var seen [maxCodings]bool
	star, starSeen := 0, false
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(elem, ";")
			name = textproto.TrimString(name)
			if name == "" {
				continue
			}
			q := qvalue(params)
			if name == "*" {
				if !starSeen {
					star, starSeen = q, true
				}
				continue
			}
			if strings.EqualFold(name, "x-gzip") {
				name = "gzip"
			}
			for i, c := range codings {
				if !seen[i] && strings.EqualFold(name, c.name) {
					weights[i], seen[i] = q, true
				}
			}
		}
	}
	if starSeen {
		for i := range codings {
			if !seen[i] {
				weights[i] = star
			}
		}
	}
	return weights
}

// qvalue returns the weight in thousandths given by the "q" parameter among
// the ";"-separated params of an Accept-Encoding entry: 1000 when there is
// none, 0 when it is malformed (RFC 9110, section 12.4.2:
// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )).
func qvalue(params string) int {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(textproto.TrimString(k), "q") {
			continue
		}
		return parseQ(textproto.TrimString(v))
	}
	return 1000
}

func parseQ(v string) int {
	if v == "" || (v[0] != '0' && v[0] != '1') {
		return 0
	}
	q := int(v[0]-'0') * 1000
	rest := v[1:]
	if rest == "" {
		return q
	}
	if rest[0] != '.' || len(rest) > 4 {
		return 0
	}
	scale := 100
	for i := 1; i < len(rest); i++ {
		c := rest[i]
		if c < '0' || c > '9' {
			return 0
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0
	}
	return q
}

// preferredCodings returns the indexes into codings of the codings the
// client accepts (weight above 0), best first: higher weight first, and
// among equal weights the server's order.
func preferredCodings(r *http.Request, codings []coding) (order [maxCodings]int, n int) {
	values := r.Header.Values("Accept-Encoding")
	if len(values) == 0 || len(codings) == 0 {
		return order, 0
	}
	weights := acceptWeights(values, codings)
	for i := range codings {
		if weights[i] <= 0 {
			continue
		}
		// Insertion sort by weight; stable, so ties keep server order.
		j := n
		for j > 0 && weights[order[j-1]] < weights[i] {
			order[j] = order[j-1]
			j--
		}
		order[j] = i
		n++
	}
	return order, n
}

// addVary adds token to the Vary header unless it is already listed.
func addVary(h http.Header, token string) {
	for _, v := range h.Values("Vary") {
		for t := range strings.SplitSeq(v, ",") {
			t = textproto.TrimString(t)
			if t == "*" || strings.EqualFold(t, token) {
				return
			}
		}
	}
	h.Add("Vary", token)
}
