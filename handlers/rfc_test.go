package handlers

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// part is one part of a multipart/byteranges body.
type part struct{ contentRange, body string }

// parts returns the parts of a multipart/byteranges response, or nil when
// it is not one.
func parts(t *testing.T, res response) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(res.header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		return nil
	}
	var ps []part
	mr := multipart.NewReader(bytes.NewReader(res.body), params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return ps
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(ps), err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("part %d: %v", len(ps), err)
		}
		ps = append(ps, part{p.Header.Get("Content-Range"), string(b)})
	}
}

// rfcFile is the representation the RFC tables are about: 26 bytes.
const rfcContent = "abcdefghijklmnopqrstuvwxyz"

// TestRFC9110 checks, for every case of RFC 9110 sections 13.1, 13.2 and
// 14.1 to 14.4 that a file server meets, the exact status, Content-Range
// and body of ServeContent's answer.
func TestRFC9110(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, fixedTime, fixedTime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	abc := write("abc.txt", rfcContent)
	empty := write("empty.txt", "")
	fi, err := os.Stat(abc)
	if err != nil {
		t.Fatal(err)
	}
	etag := makeETag(fi, "")
	lm := fixedTime.UTC().Format(http.TimeFormat)
	before := fixedTime.Add(-time.Hour).UTC().Format(http.TimeFormat)
	after := fixedTime.Add(time.Hour).UTC().Format(http.TimeFormat)
	const whole = rfcContent

	tests := []struct {
		name      string
		file      string // default abc
		method    string // default GET
		hdr       []string
		wantCode  int
		wantCR    string // Content-Range
		wantBody  string
		wantParts []part // for multipart/byteranges
	}{
		// 14.1.1, 14.1.2: range specifiers and their satisfiability.
		{name: "14.2 no Range", wantCode: 200, wantBody: whole},
		{name: "14.1.2 int-range", hdr: []string{"Range", "bytes=0-4"}, wantCode: 206, wantCR: "bytes 0-4/26", wantBody: "abcde"},
		{name: "14.1.2 first byte", hdr: []string{"Range", "bytes=0-0"}, wantCode: 206, wantCR: "bytes 0-0/26", wantBody: "a"},
		{name: "14.1.2 last byte", hdr: []string{"Range", "bytes=25-25"}, wantCode: 206, wantCR: "bytes 25-25/26", wantBody: "z"},
		{name: "14.1.2 open int-range", hdr: []string{"Range", "bytes=20-"}, wantCode: 206, wantCR: "bytes 20-25/26", wantBody: "uvwxyz"},
		{name: "14.1.2 last-pos past the end", hdr: []string{"Range", "bytes=20-100"}, wantCode: 206, wantCR: "bytes 20-25/26", wantBody: "uvwxyz"},
		{name: "14.1.2 suffix-range", hdr: []string{"Range", "bytes=-3"}, wantCode: 206, wantCR: "bytes 23-25/26", wantBody: "xyz"},
		{name: "14.1.2 suffix longer than the file", hdr: []string{"Range", "bytes=-100"}, wantCode: 206, wantCR: "bytes 0-25/26", wantBody: whole},
		{name: "14.1.1 leading zeros", hdr: []string{"Range", "bytes=0003-0004"}, wantCode: 206, wantCR: "bytes 3-4/26", wantBody: "de"},
		{name: "14.1.1 last-pos of any length", hdr: []string{"Range", "bytes=24-99999999999999999999"}, wantCode: 206, wantCR: "bytes 24-25/26", wantBody: "yz"},
		{name: "14.1.1 suffix of any length", hdr: []string{"Range", "bytes=-99999999999999999999"}, wantCode: 206, wantCR: "bytes 0-25/26", wantBody: whole},
		{name: "14.1 unit is case-insensitive", hdr: []string{"Range", "Bytes=0-1"}, wantCode: 206, wantCR: "bytes 0-1/26", wantBody: "ab"},
		{name: "14.1.1 OWS around range-specs", hdr: []string{"Range", "bytes= 0-1 ,\t2-3"}, wantCode: 206,
			wantParts: []part{{"bytes 0-1/26", "ab"}, {"bytes 2-3/26", "cd"}}},
		{name: "5.6.1 empty list elements", hdr: []string{"Range", "bytes=,0-1,,"}, wantCode: 206, wantCR: "bytes 0-1/26", wantBody: "ab"},

		// 14.1.2, 15.5.17: unsatisfiable sets get 416 with the length.
		{name: "14.1.2 first-pos at the end", hdr: []string{"Range", "bytes=26-"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range: failed to overlap\n"},
		{name: "14.1.2 first-pos of any length", hdr: []string{"Range", "bytes=99999999999999999999-"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range: failed to overlap\n"},
		{name: "14.1.2 suffix-length 0", hdr: []string{"Range", "bytes=-0"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range: failed to overlap\n"},
		{name: "14.1.2 two suffixes of length 0", hdr: []string{"Range", "bytes=-0,-0"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range: failed to overlap\n"},
		{name: "14.1.2 suffix-length 0 beside a satisfiable range", hdr: []string{"Range", "bytes=-0,0-1"}, wantCode: 206, wantCR: "bytes 0-1/26", wantBody: "ab"},
		{name: "14.1.2 unsatisfiable beside satisfiable", hdr: []string{"Range", "bytes=30-,0-1"}, wantCode: 206, wantCR: "bytes 0-1/26", wantBody: "ab"},

		// 14.1.1, 14.2: invalid specifiers are rejected.
		{name: "14.1.1 last-pos below first-pos", hdr: []string{"Range", "bytes=5-3"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "14.1.1 last-pos below first-pos, both huge", hdr: []string{"Range", "bytes=99999999999999999999-99999999999999999998"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "14.1.1 not a number", hdr: []string{"Range", "bytes=a-b"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "14.1.1 whitespace inside a range-spec", hdr: []string{"Range", "bytes=0 - 1"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "14.1.1 sign", hdr: []string{"Range", "bytes=+0-1"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "14.1.1 no range unit", hdr: []string{"Range", "0-4"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "14.1.1 invalid after valid", hdr: []string{"Range", "bytes=0-1,x"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},
		{name: "5.3 Range sent twice", hdr: []string{"Range", "bytes=0-1", "Range", "bytes=2-3"}, wantCode: 416, wantCR: "bytes */26", wantBody: "invalid range\n"},

		// 14.2: ranges a server ignores.
		{name: "14.2 unknown range unit", hdr: []string{"Range", "items=0-5"}, wantCode: 200, wantBody: whole},
		{name: "14.2 empty range-set", hdr: []string{"Range", "bytes="}, wantCode: 200, wantBody: whole},
		{name: "14.2 ranges adding up past the size", hdr: []string{"Range", "bytes=0-,0-"}, wantCode: 200, wantBody: whole},
		{name: "14.2 Range with POST", method: "POST", hdr: []string{"Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "14.2 empty representation", file: empty, hdr: []string{"Range", "bytes=0-"}, wantCode: 200, wantBody: ""},
		{name: "14.2 empty representation, suffix", file: empty, hdr: []string{"Range", "bytes=-5"}, wantCode: 200, wantBody: ""},
		{name: "14.2 empty representation, invalid", file: empty, hdr: []string{"Range", "bytes=x"}, wantCode: 416, wantCR: "bytes */0", wantBody: "invalid range\n"},

		// 15.3.7: multipart/byteranges (14.6) for two or more ranges.
		{name: "15.3.7.2 two ranges", hdr: []string{"Range", "bytes=0-1,4-5"}, wantCode: 206,
			wantParts: []part{{"bytes 0-1/26", "ab"}, {"bytes 4-5/26", "ef"}}},
		{name: "15.3.7.2 order kept", hdr: []string{"Range", "bytes=-2,0-0"}, wantCode: 206,
			wantParts: []part{{"bytes 24-25/26", "yz"}, {"bytes 0-0/26", "a"}}},
		{name: "15.3.7.2 overlapping", hdr: []string{"Range", "bytes=0-2,1-3"}, wantCode: 206,
			wantParts: []part{{"bytes 0-2/26", "abc"}, {"bytes 1-3/26", "bcd"}}},
		{name: "9.3.2 HEAD with a range", method: "HEAD", hdr: []string{"Range", "bytes=0-4"}, wantCode: 206, wantCR: "bytes 0-4/26"},

		// 13.1.1 If-Match (strong comparison, 8.8.3.2).
		{name: "13.1.1 If-Match matches", hdr: []string{"If-Match", etag}, wantCode: 200, wantBody: whole},
		{name: "13.1.1 If-Match in a list", hdr: []string{"If-Match", `"a", ` + etag}, wantCode: 200, wantBody: whole},
		{name: "13.1.1 If-Match *", hdr: []string{"If-Match", "*"}, wantCode: 200, wantBody: whole},
		{name: "13.1.1 If-Match other", hdr: []string{"If-Match", `"other"`}, wantCode: 412},
		{name: "13.1.1 If-Match weak never matches", hdr: []string{"If-Match", "W/" + etag}, wantCode: 412},
		{name: "13.1.1 If-Match invalid list", hdr: []string{"If-Match", etag + " x"}, wantCode: 412},
		{name: "13.1.1 If-Match * inside a list", hdr: []string{"If-Match", `"a", *`}, wantCode: 412},
		{name: "5.3 If-Match over two lines", hdr: []string{"If-Match", `"a"`, "If-Match", etag}, wantCode: 200, wantBody: whole},

		// 13.1.2 If-None-Match (weak comparison).
		{name: "13.1.2 If-None-Match matches", hdr: []string{"If-None-Match", etag}, wantCode: 304},
		{name: "13.1.2 If-None-Match weak matches", hdr: []string{"If-None-Match", "W/" + etag}, wantCode: 304},
		{name: "13.1.2 If-None-Match *", hdr: []string{"If-None-Match", "*"}, wantCode: 304},
		{name: "13.1.2 If-None-Match other", hdr: []string{"If-None-Match", `"other"`}, wantCode: 200, wantBody: whole},
		{name: "13.1.2 If-None-Match with POST", method: "POST", hdr: []string{"If-None-Match", etag}, wantCode: 412},
		{name: "13.1.2 If-None-Match invalid list", hdr: []string{"If-None-Match", etag + " x"}, wantCode: 200, wantBody: whole},
		{name: "5.3 If-None-Match over two lines", hdr: []string{"If-None-Match", `"a"`, "If-None-Match", etag}, wantCode: 304},

		// 13.1.3 If-Modified-Since.
		{name: "13.1.3 If-Modified-Since equal", hdr: []string{"If-Modified-Since", lm}, wantCode: 304},
		{name: "13.1.3 If-Modified-Since later", hdr: []string{"If-Modified-Since", after}, wantCode: 304},
		{name: "13.1.3 If-Modified-Since earlier", hdr: []string{"If-Modified-Since", before}, wantCode: 200, wantBody: whole},
		{name: "13.1.3 If-Modified-Since not a date", hdr: []string{"If-Modified-Since", "yesterday"}, wantCode: 200, wantBody: whole},
		{name: "13.1.3 If-Modified-Since twice", hdr: []string{"If-Modified-Since", lm, "If-Modified-Since", lm}, wantCode: 200, wantBody: whole},
		{name: "13.1.3 If-Modified-Since with POST", method: "POST", hdr: []string{"If-Modified-Since", lm}, wantCode: 200, wantBody: whole},
		{name: "13.1.3 If-Modified-Since ignored with If-None-Match", hdr: []string{"If-None-Match", `"other"`, "If-Modified-Since", lm}, wantCode: 200, wantBody: whole},
		{name: "13.1.3 RFC 850 date", hdr: []string{"If-Modified-Since", fixedTime.UTC().Format(time.RFC850)}, wantCode: 304},
		{name: "13.1.3 asctime date", hdr: []string{"If-Modified-Since", fixedTime.UTC().Format(time.ANSIC)}, wantCode: 304},

		// 13.1.4 If-Unmodified-Since.
		{name: "13.1.4 If-Unmodified-Since earlier", hdr: []string{"If-Unmodified-Since", before}, wantCode: 412},
		{name: "13.1.4 If-Unmodified-Since equal", hdr: []string{"If-Unmodified-Since", lm}, wantCode: 200, wantBody: whole},
		{name: "13.1.4 If-Unmodified-Since later", hdr: []string{"If-Unmodified-Since", after}, wantCode: 200, wantBody: whole},
		{name: "13.1.4 If-Unmodified-Since not a date", hdr: []string{"If-Unmodified-Since", "never"}, wantCode: 200, wantBody: whole},
		{name: "13.1.4 If-Unmodified-Since ignored with If-Match", hdr: []string{"If-Match", etag, "If-Unmodified-Since", before}, wantCode: 200, wantBody: whole},

		// 13.1.5 If-Range.
		{name: "13.1.5 If-Range entity tag matches", hdr: []string{"If-Range", etag, "Range", "bytes=0-4"}, wantCode: 206, wantCR: "bytes 0-4/26", wantBody: "abcde"},
		{name: "13.1.5 If-Range entity tag differs", hdr: []string{"If-Range", `"other"`, "Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range weak tag", hdr: []string{"If-Range", "W/" + etag, "Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range tag and more", hdr: []string{"If-Range", etag + " x", "Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range date matches", hdr: []string{"If-Range", lm, "Range", "bytes=0-4"}, wantCode: 206, wantCR: "bytes 0-4/26", wantBody: "abcde"},
		{name: "13.1.5 If-Range date differs", hdr: []string{"If-Range", before, "Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range garbage", hdr: []string{"If-Range", "garbage", "Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range twice", hdr: []string{"If-Range", etag, "If-Range", etag, "Range", "bytes=0-4"}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range without Range", hdr: []string{"If-Range", `"other"`}, wantCode: 200, wantBody: whole},
		{name: "13.1.5 If-Range false skips an invalid Range", hdr: []string{"If-Range", `"other"`, "Range", "bytes=x"}, wantCode: 200, wantBody: whole},

		// 13.2.2 precedence.
		{name: "13.2.2 If-Match before If-None-Match", hdr: []string{"If-Match", `"other"`, "If-None-Match", etag}, wantCode: 412},
		{name: "13.2.2 If-Unmodified-Since before If-None-Match", hdr: []string{"If-Unmodified-Since", before, "If-None-Match", etag}, wantCode: 412},
		{name: "13.2.2 If-None-Match before Range", hdr: []string{"If-None-Match", etag, "Range", "bytes=0-4"}, wantCode: 304},
		{name: "13.2.2 If-Match before Range", hdr: []string{"If-Match", `"other"`, "Range", "bytes=x"}, wantCode: 412},
		{name: "13.2.2 If-Modified-Since before Range", hdr: []string{"If-Modified-Since", lm, "Range", "bytes=-0"}, wantCode: 304},
		{name: "13.2.2 all pass, then Range", hdr: []string{"If-Match", etag, "If-None-Match", `"other"`, "If-Range", etag, "Range", "bytes=-1"}, wantCode: 206, wantCR: "bytes 25-25/26", wantBody: "z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, method := abc, "GET"
			if tt.file != "" {
				file = tt.file
			}
			if tt.method != "" {
				method = tt.method
			}
			res := record(serveContentHandler(t, file, "x.txt"), request(method, "/", tt.hdr...))
			if res.status != tt.wantCode {
				t.Fatalf("status %d, want %d (body %q)", res.status, tt.wantCode, res.body)
			}
			if got := res.header.Get("Content-Range"); got != tt.wantCR {
				t.Errorf("Content-Range %q, want %q", got, tt.wantCR)
			}
			if tt.wantParts != nil {
				if got := parts(t, res); !equalParts(got, tt.wantParts) {
					t.Errorf("parts %q, want %q", got, tt.wantParts)
				}
			} else if string(res.body) != tt.wantBody && method != "HEAD" {
				t.Errorf("body %q, want %q", res.body, tt.wantBody)
			}
			if method == "HEAD" && len(res.body) != 0 {
				t.Errorf("HEAD body %q", res.body)
			}
			switch res.status {
			case 200, 206:
				cl := res.header.Get("Content-Length")
				if method != "HEAD" && cl != strconv.Itoa(len(res.body)) {
					t.Errorf("Content-Length %q, body %d bytes", cl, len(res.body))
				}
				if res.header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("Accept-Ranges %q", res.header.Get("Accept-Ranges"))
				}
			case 304:
				// 15.4.5: the ETag stays, Last-Modified and the
				// representation's metadata go.
				if res.header.Get("Etag") != etag || res.header.Get("Last-Modified") != "" || res.header.Get("Content-Type") != "" || len(res.body) != 0 {
					t.Errorf("304 header %v body %q", res.header, res.body)
				}
			case 412:
				if len(res.body) != 0 || res.header.Get("Etag") != etag {
					t.Errorf("412 header %v body %q", res.header, res.body)
				}
			case 416:
				for _, k := range []string{"Etag", "Last-Modified", "Cache-Control"} {
					if v := res.header.Get(k); v != "" {
						t.Errorf("416 has %s: %q", k, v)
					}
				}
			}
		})
	}
}

func equalParts(a, b []part) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRFC9110IfRangeWithoutDate checks 13.1.5 for representations whose
// modification time means "none" (zero or the Unix epoch: no Last-Modified
// is sent): no If-Range date matches them, not even the epoch's.
func TestRFC9110IfRangeWithoutDate(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(rfcContent); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(0, 0)
	for _, tt := range []struct {
		name     string
		modtime  time.Time
		ifRange  string
		wantCode int
		wantLM   string
	}{
		{"epoch", epoch, epoch.UTC().Format(http.TimeFormat), 200, ""},
		{"zero", time.Time{}, time.Time{}.UTC().Format(http.TimeFormat), 200, ""},
		{"a second after the epoch", epoch.Add(time.Second), epoch.Add(time.Second).UTC().Format(http.TimeFormat), 206, "Thu, 01 Jan 1970 00:00:01 GMT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ServeContent(w, r, "x.txt", tt.modtime, f) })
			res := record(h, request("GET", "/", "If-Range", tt.ifRange, "Range", "bytes=0-0"))
			if res.status != tt.wantCode || res.header.Get("Last-Modified") != tt.wantLM {
				t.Errorf("status %d, Last-Modified %q; want %d, %q", res.status, res.header.Get("Last-Modified"), tt.wantCode, tt.wantLM)
			}
		})
	}
}

// TestMultipartPartType checks 14.6: each part carries the
// representation's Content-Type, and none when the representation has none
// (the caller set Content-Type to nil), rather than an empty field.
func TestMultipartPartType(t *testing.T) {
	tree := newTestTree(t)
	path := filepath.Join(tree.rootDir, "hello.txt")
	for _, tt := range []struct {
		name   string
		preset []string // nil: no key
		want   []string // the parts' Content-Type lines
	}{
		{"by extension", nil, []string{"text/plain; charset=utf-8"}},
		{"caller's", []string{"text/x-hello"}, []string{"text/x-hello"}},
		{"caller's with CR LF", []string{"text/plain\r\nX-Evil: 1"}, []string{"text/plain  X-Evil: 1"}},
		{"none", []string{}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.preset != nil {
					w.Header()["Content-Type"] = tt.preset
					if len(tt.preset) == 0 {
						w.Header()["Content-Type"] = nil
					}
				}
				serveContentHandler(t, path, "hello.txt").ServeHTTP(w, r)
			})
			res := record(h, request("GET", "/", "Range", "bytes=0-1,3-4"))
			_, params, err := mime.ParseMediaType(res.header.Get("Content-Type"))
			if res.status != 206 || err != nil {
				t.Fatalf("status %d, Content-Type %q", res.status, res.header.Get("Content-Type"))
			}
			mr := multipart.NewReader(bytes.NewReader(res.body), params["boundary"])
			for i := 0; ; i++ {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := p.Header.Values("Content-Type"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("part %d Content-Type %q, want %q", i, got, tt.want)
				}
			}
			if cl := res.header.Get("Content-Length"); cl != strconv.Itoa(len(res.body)) {
				t.Errorf("Content-Length %s, body %d bytes", cl, len(res.body))
			}
		})
	}
}

// TestServeContentMatchesNetHTTP is the differential test: for every Range
// header and precondition, with GET, HEAD and POST, this package's response
// equals http.ServeContent's (same status, header fields and body once the
// boundary is normalised) for the request netHTTPEquivalent derives, that
// is, except for the documented deviations.
func TestServeContentMatchesNetHTTP(t *testing.T) {
	tree := newTestTree(t)
	files := []struct{ rel, name, partType string }{
		{"big.bin", "big.bin", "application/octet-stream"},
		{"hello.txt", "hello.txt", "text/plain; charset=utf-8"},
		{"noext", "noext", "text/plain; charset=utf-8"}, // sniffed
		{"zero.txt", "zero.txt", "text/plain; charset=utf-8"},
	}
	for _, file := range files {
		path := filepath.Join(tree.rootDir, file.rel)
		etag := tree.etagOf(t, file.rel, "")
		content := tree.read(t, file.rel)
		mine := serveContentHandler(t, path, file.name)
		ref := netHTTPHandler(t, path, file.name, http.Header{"Etag": {etag}})
		for _, rc := range rangeCases {
			for _, cc := range conditionalCases(etag, fixedTime) {
				for _, method := range []string{"GET", "HEAD", "POST"} {
					t.Run(file.rel+"/"+rc.name+"/"+cc.name+"/"+method, func(t *testing.T) {
						hdr := append([]string(nil), cc.header...)
						if rc.value != "" {
							hdr = append(hdr, "Range", rc.value)
						}
						got := record(mine, request(method, "/x", hdr...))
						refReq, inv := netHTTPEquivalent(request(method, "/x", hdr...), int64(len(content)), DefaultMaxRanges)
						want := expectFromNetHTTP(record(ref, refReq), inv, int64(len(content)))
						if d := diffResponses(got, want); d != "" {
							t.Fatalf("differs from net/http:\n%s", d)
						}
						if got.status == 206 && method == "GET" && strings.HasPrefix(got.header.Get("Content-Type"), "multipart/") {
							checkMultipart(t, got, content, file.partType)
						}
					})
				}
			}
		}
	}
}

// TestFileServerMatchesNetHTTP runs the same comparison through FileServer,
// whose reference is http.ServeContent with the FileServer's ETag and Vary.
func TestFileServerMatchesNetHTTP(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root, WithCacheControl("max-age=60"))
	for _, rel := range []string{"big.bin", "noext", "style.css"} {
		etag := tree.etagOf(t, rel, "")
		content := tree.read(t, rel)
		ref := netHTTPHandler(t, filepath.Join(tree.rootDir, rel), rel, http.Header{
			"Etag":          {etag},
			"Vary":          {"Accept-Encoding"},
			"Cache-Control": {"max-age=60"},
		})
		for _, rc := range rangeCases {
			for _, cc := range conditionalCases(etag, fixedTime) {
				t.Run(rel+"/"+rc.name+"/"+cc.name, func(t *testing.T) {
					hdr := append([]string(nil), cc.header...)
					if rc.value != "" {
						hdr = append(hdr, "Range", rc.value)
					}
					got := record(fs, request("GET", "/"+rel, hdr...))
					refReq, inv := netHTTPEquivalent(request("GET", "/"+rel, hdr...), int64(len(content)), DefaultMaxRanges)
					want := expectFromNetHTTP(record(ref, refReq), inv, int64(len(content)))
					if d := diffResponses(got, want); d != "" {
						t.Fatalf("differs from net/http:\n%s", d)
					}
				})
			}
		}
	}
}
