package handlers

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveContentHandler serves one file with this package's ServeContent.
func serveContentHandler(tb testing.TB, path, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			tb.Error(err)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			tb.Error(err)
			return
		}
		ServeContent(w, r, name, fi.ModTime(), f)
	})
}

// netHTTPHandler serves one file with net/http's http.ServeContent, after
// setting the header fields the handler under test sets.
func netHTTPHandler(tb testing.TB, path, name string, header http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			tb.Error(err)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			tb.Error(err)
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		http.ServeContent(w, r, name, fi.ModTime(), f)
	})
}

// manyRanges returns a Range header for n one-byte ranges 0-0, 2-2, ...
func manyRanges(n int) string {
	var b strings.Builder
	b.WriteString("bytes=")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", 2*i, 2*i)
	}
	return b.String()
}

// rangeCase is a Range header value for the differential tests.
type rangeCase struct {
	name, value string
}

var rangeCases = []rangeCase{
	{"none", ""},
	{"single", "bytes=0-9"},
	{"single open", "bytes=10-"},
	{"suffix", "bytes=-5"},
	{"two", "bytes=0-9,20-29"},
	{"three", "bytes=0-9,20-29,40-49"},
	{"unordered", "bytes=40-49,0-9"},
	{"overlapping", "bytes=0-9,5-14"},
	{"duplicate", "bytes=0-4,0-4"},
	{"adjacent", "bytes=0-4,5-9"},
	{"suffix and prefix", "bytes=-3,0-2"},
	{"open and suffix", "bytes=12-,-1"},
	{"whole twice exceeds size", "bytes=0-,0-"},
	{"sum exceeds size", "bytes=0-,1-2"},
	{"zero suffix", "bytes=-0"},
	{"zero suffix in a set", "bytes=-0,0-1"},
	{"two zero suffixes", "bytes=-0,-0"},
	{"whitespace", "bytes= 0-1 , 3-4 "},
	{"tabs", "bytes=\t0-1\t,\t3-4\t"},
	{"whitespace inside spec", "bytes=0 - 1, 3 - 4"},
	{"empty elements", "bytes=,0-1,,3-4,"},
	{"only commas", "bytes=,,,"},
	{"empty set", "bytes="},
	{"reversed", "bytes=9-0"},
	{"reversed in set", "bytes=0-1,9-0"},
	{"dash only", "bytes=-"},
	{"double dash", "bytes=--5"},
	{"negative end", "bytes=0--5"},
	{"negative start", "bytes=-1-2"},
	{"plus sign", "bytes=+0-1,+3-4"},
	{"no dash", "bytes=5"},
	{"letters", "bytes=a-b,0-1"},
	{"trailing garbage", "bytes=0-1,x"},
	{"semicolons", "bytes=0-1;3-4"},
	{"other unit", "items=0-1,3-4"},
	{"unit case", "Bytes=0-1,3-4"},
	{"no unit", "0-1,3-4"},
	{"start beyond end", "bytes=1000000-"},
	{"all beyond end", "bytes=1000000-,2000000-2000001"},
	{"one beyond end", "bytes=0-1,1000000-"},
	{"two and one beyond end", "bytes=0-1,3-4,1000000-"},
	{"end beyond size", "bytes=0-1,3-1000000"},
	{"huge end", "bytes=0-1,3-99999999999999999999"},
	{"huge start", "bytes=0-1,99999999999999999999-"},
	{"huge suffix", "bytes=-99999999999999999999"},
	{"max int64", "bytes=0-9223372036854775807,1-1"},
	{"max int64 start", "bytes=9223372036854775807-,0-1"},
	{"min int64 suffix", "bytes=-9223372036854775808"},
	{"max int64 suffix", "bytes=-9223372036854775807,-9223372036854775807"},
	{"leading zeros", "bytes=0003-0004,0-0"},
	{"huge start below huge end", "bytes=99999999999999999998-99999999999999999999"},
	{"huge end below huge start", "bytes=99999999999999999999-99999999999999999998,0-1"},
	{"upper-case unit", "BYTES=0-1"},
	{"zero suffix with tabs", "bytes=0-1\t,\t-0"},
	{"no unit", "=0-1"},
	{"space before equals", "bytes =0-1"},
	{"100 ranges", manyRanges(100)},
	{"101 ranges", manyRanges(101)},
	{"1000 ranges", manyRanges(1000)},
}

// conditionalCases are request header sets exercising every precondition;
// they are functions of the representation's ETag and Last-Modified.
func conditionalCases(etag string, modtime time.Time) []struct {
	name   string
	header []string
} {
	lm := modtime.UTC().Format(http.TimeFormat)
	before := modtime.Add(-time.Hour).UTC().Format(http.TimeFormat)
	after := modtime.Add(time.Hour).UTC().Format(http.TimeFormat)
	return []struct {
		name   string
		header []string
	}{
		{"unconditional", nil},
		{"If-Range etag match", []string{"If-Range", etag}},
		{"If-Range etag mismatch", []string{"If-Range", `"other"`}},
		{"If-Range weak etag", []string{"If-Range", "W/" + etag}},
		{"If-Range date match", []string{"If-Range", lm}},
		{"If-Range date before", []string{"If-Range", before}},
		{"If-Range garbage", []string{"If-Range", "garbage"}},
		{"If-Match match", []string{"If-Match", etag}},
		{"If-Match list match", []string{"If-Match", `"a", ` + etag}},
		{"If-Match mismatch", []string{"If-Match", `"other"`}},
		{"If-Match star", []string{"If-Match", "*"}},
		{"If-Match weak", []string{"If-Match", "W/" + etag}},
		{"If-None-Match match", []string{"If-None-Match", etag}},
		{"If-None-Match weak match", []string{"If-None-Match", "W/" + etag}},
		{"If-None-Match star", []string{"If-None-Match", "*"}},
		{"If-None-Match mismatch", []string{"If-None-Match", `"other"`}},
		{"If-None-Match malformed", []string{"If-None-Match", `"unterminated`}},
		{"If-Modified-Since equal", []string{"If-Modified-Since", lm}},
		{"If-Modified-Since before", []string{"If-Modified-Since", before}},
		{"If-Modified-Since garbage", []string{"If-Modified-Since", "yesterday"}},
		{"If-Unmodified-Since before", []string{"If-Unmodified-Since", before}},
		{"If-Unmodified-Since after", []string{"If-Unmodified-Since", after}},
		{"If-None-Match mismatch overrides If-Modified-Since", []string{"If-None-Match", `"other"`, "If-Modified-Since", after}},
		{"If-Match mismatch and If-Range match", []string{"If-Match", `"other"`, "If-Range", etag}},
		{"If-Unmodified-Since after and If-Range date", []string{"If-Unmodified-Since", after, "If-Range", lm}},
	}
}

// checkMultipart parses a multipart/byteranges response and checks every
// part's Content-Range, Content-Type and bytes against content.
func checkMultipart(tb testing.TB, res response, content []byte, partType string) int {
	tb.Helper()
	mt, params, err := mime.ParseMediaType(res.header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		tb.Fatalf("Content-Type = %q", res.header.Get("Content-Type"))
	}
	if cl := res.header.Get("Content-Length"); cl != strconv.Itoa(len(res.body)) {
		tb.Errorf("Content-Length = %q, body has %d bytes", cl, len(res.body))
	}
	mr := multipart.NewReader(bytes.NewReader(res.body), params["boundary"])
	n := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("part %d: %v", n, err)
		}
		got, err := io.ReadAll(p)
		if err != nil {
			tb.Fatalf("part %d: %v", n, err)
		}
		if ct := p.Header.Get("Content-Type"); ct != partType {
			tb.Errorf("part %d Content-Type = %q, want %q", n, ct, partType)
		}
		var start, end, size int64
		if _, err := fmt.Sscanf(p.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil {
			tb.Fatalf("part %d Content-Range %q: %v", n, p.Header.Get("Content-Range"), err)
		}
		if size != int64(len(content)) {
			tb.Errorf("part %d size %d, want %d", n, size, len(content))
		}
		if start < 0 || end+1 < start || end >= size {
			tb.Fatalf("part %d Content-Range %q out of bounds", n, p.Header.Get("Content-Range"))
		}
		if want := content[start : end+1]; !bytes.Equal(got, want) {
			tb.Errorf("part %d (%d-%d) bytes differ from the file", n, start, end)
		}
		n++
	}
	return n
}

func TestServeContentETag(t *testing.T) {
	tree := newTestTree(t)
	path := filepath.Join(tree.rootDir, "hello.txt")
	tests := []struct {
		name     string
		preset   []string // nil: no Etag key; empty: Etag set to nil
		wantETag string
	}{
		{"derived", nil, tree.etagOf(t, "hello.txt", "")},
		{"caller's kept", []string{`"caller"`}, `"caller"`},
		{"caller suppresses", []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.preset != nil {
					w.Header()["Etag"] = tt.preset
					if len(tt.preset) == 0 {
						w.Header()["Etag"] = nil
					}
				}
				serveContentHandler(t, path, "hello.txt").ServeHTTP(w, r)
			})
			res := record(h, request("GET", "/"))
			if got := res.header.Get("Etag"); got != tt.wantETag {
				t.Errorf("Etag = %q, want %q", got, tt.wantETag)
			}
			if tt.wantETag != "" {
				res := record(h, request("GET", "/", "If-None-Match", tt.wantETag))
				if res.status != 304 {
					t.Errorf("If-None-Match with the ETag: status %d, want 304", res.status)
				}
			}
		})
	}
}

func TestMakeETag(t *testing.T) {
	tree := newTestTree(t)
	fi, err := os.Stat(filepath.Join(tree.rootDir, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// fixedTime: 2024-03-01 12:30:45.123456789 UTC = 0x65e1ca75 s, 0x75bcd15 ns; size 14 = 0xe.
	tests := []struct{ encoding, want string }{
		{"", `"65e1ca75.75bcd15-e"`},
		{"gzip", `"65e1ca75.75bcd15-e-gzip"`},
		{"br", `"65e1ca75.75bcd15-e-br"`},
	}
	for _, tt := range tests {
		t.Run(tt.encoding, func(t *testing.T) {
			got := makeETag(fi, tt.encoding)
			if got != tt.want {
				t.Errorf("makeETag = %s, want %s", got, tt.want)
			}
			if e, rest, ok := parseEntityTag(got); !ok || e.weak || e.opaque != got || rest != "" {
				t.Errorf("parseEntityTag(%s) = %+v, %q, %v: not a valid strong ETag", got, e, rest, ok)
			}
		})
	}
}

func TestServeContentNonRegularFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		hdr  []string
	}{
		{"plain", nil},
		{"multi-range", []string{"Range", "bytes=0-1,3-4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			run := func(serve func(http.ResponseWriter, *http.Request, string, time.Time, *os.File)) response {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer pr.Close()
				go func() { pw.Write([]byte("piped")); pw.Close() }()
				return record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					serve(w, r, "p.txt", time.Time{}, pr)
				}), request("GET", "/", tt.hdr...))
			}
			got := run(ServeContent)
			want := run(func(w http.ResponseWriter, r *http.Request, name string, mt time.Time, f *os.File) {
				http.ServeContent(w, r, name, mt, f)
			})
			if d := diffResponses(got, want); d != "" {
				t.Fatalf("differs from net/http:\n%s", d)
			}
			if got.status != 500 || string(got.body) != "seeker can't seek\n" {
				t.Errorf("got %d %q", got.status, got.body)
			}
		})
	}
}

// readFromRecorder is a ResponseWriter that, like net/http's, implements
// io.ReaderFrom, and records what reaches Write and ReadFrom.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	writes   int64    // bytes passed to Write
	sources  []string // concrete type of each ReadFrom source, and of what it wraps
	limits   []int64  // N of each *io.LimitedReader source
	readFrom int64    // bytes copied by ReadFrom
}

func (r *readFromRecorder) Write(p []byte) (int, error) {
	r.writes += int64(len(p))
	return r.ResponseRecorder.Write(p)
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", src)
	if lr, ok := src.(*io.LimitedReader); ok {
		desc += fmt.Sprintf("(%T)", lr.R)
		r.limits = append(r.limits, lr.N)
	}
	r.sources = append(r.sources, desc)
	n, err := io.Copy(r.ResponseRecorder, src)
	r.readFrom += n
	return n, err
}

// TestMultiRangeReadFrom proves that every part of a multipart response
// reaches the ResponseWriter's ReadFrom as an *io.LimitedReader around the
// *os.File (the shape net/http passes to sendfile), that only part headers go
// through Write, and that Content-Length is exact and set before the body.
func TestMultiRangeReadFrom(t *testing.T) {
	tree := newTestTree(t)
	content := tree.read(t, "big.bin")
	tests := []struct {
		name, rangeHeader, encoding string
		lengths                     []int64 // expected ReadFrom sizes
	}{
		{"two", "bytes=0-1023,4096-8191", "", []int64{1024, 4096}},
		{"three unordered", "bytes=60000-,0-99,100-199", "", []int64{5536, 100, 100}},
		{"unsatisfiable -0 is dropped", "bytes=-0,0-9,20-29", "", []int64{10, 10}},
		{"sidecar", "bytes=0-3,5-8", "gzip", []int64{4, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			r := request("GET", "/big.bin", "Range", tt.rangeHeader)
			want := content
			if tt.encoding != "" {
				r = request("GET", "/style.css", "Range", tt.rangeHeader, "Accept-Encoding", tt.encoding)
				want = tree.read(t, "style.css.gz")
			}
			FileServer(tree.root).ServeHTTP(rec, r)
			res := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
			if res.status != 206 {
				t.Fatalf("status = %d", res.status)
			}
			if rec.Result().TransferEncoding != nil {
				t.Errorf("Transfer-Encoding = %v", rec.Result().TransferEncoding)
			}
			ct := "application/octet-stream"
			if tt.encoding != "" {
				ct = "text/css; charset=utf-8"
			}
			if n := checkMultipart(t, res, want, ct); n != len(tt.lengths) {
				t.Errorf("%d parts", n)
			}
			if rec.Header().Get("Content-Encoding") != tt.encoding {
				t.Errorf("Content-Encoding = %q, want %q", rec.Header().Get("Content-Encoding"), tt.encoding)
			}
			if len(rec.sources) != len(tt.lengths) {
				t.Fatalf("ReadFrom sources = %v, want %d calls", rec.sources, len(tt.lengths))
			}
			var sum int64
			for i, src := range rec.sources {
				if src != "*io.LimitedReader(*os.File)" {
					t.Errorf("ReadFrom source %d = %s, want *io.LimitedReader(*os.File)", i, src)
				}
				if rec.limits[i] != tt.lengths[i] {
					t.Errorf("ReadFrom %d: N = %d, want %d", i, rec.limits[i], tt.lengths[i])
				}
				sum += tt.lengths[i]
			}
			if rec.readFrom != sum {
				t.Errorf("ReadFrom copied %d bytes, want %d", rec.readFrom, sum)
			}
			cl, _ := strconv.ParseInt(rec.Header().Get("Content-Length"), 10, 64)
			if cl != int64(len(res.body)) || rec.writes+rec.readFrom != cl {
				t.Errorf("Content-Length %d, body %d, Write %d + ReadFrom %d", cl, len(res.body), rec.writes, rec.readFrom)
			}
			// The recorder snapshots the header at WriteHeader: so
			// Content-Length was there before the first byte.
			if rec.Result().ContentLength != cl {
				t.Errorf("Content-Length at WriteHeader = %d, want %d", rec.Result().ContentLength, cl)
			}
		})
	}
}

func TestWithMaxRangesZeroPanics(t *testing.T) {
	defer func() {
		if got := recover(); got != "fastpath/handlers: WithMaxRanges(0): give a bound of at least 1, or -1 for none" {
			t.Errorf("panic %v", got)
		}
	}()
	WithMaxRanges(0)
}

func TestWithMaxRanges(t *testing.T) {
	tree := newTestTree(t)
	tests := []struct {
		name       string
		opts       []Option
		rangeValue string
		wantCode   int
		wantType   string
	}{
		{"default allows 100", nil, manyRanges(100), 206, "multipart/byteranges"},
		{"default refuses 101", nil, manyRanges(101), 200, "application/octet-stream"},
		{"bound 2 allows 2", []Option{WithMaxRanges(2)}, "bytes=0-1,3-4", 206, "multipart/byteranges"},
		{"bound 2 refuses 3", []Option{WithMaxRanges(2)}, "bytes=0-1,3-4,6-7", 200, "application/octet-stream"},
		{"bound 1 refuses 2", []Option{WithMaxRanges(1)}, "bytes=0-1,3-4", 200, "application/octet-stream"},
		{"bound 1 allows a single range", []Option{WithMaxRanges(1)}, "bytes=3-4", 206, "application/octet-stream"},
		{"unbounded", []Option{WithMaxRanges(-1)}, manyRanges(1000), 206, "multipart/byteranges"},
		{"unsatisfiable ranges do not count", []Option{WithMaxRanges(2)}, "bytes=0-1,3-4,999999-,999999-", 206, "multipart/byteranges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := record(FileServer(tree.root, tt.opts...), request("GET", "/big.bin", "Range", tt.rangeValue))
			if res.status != tt.wantCode {
				t.Fatalf("status = %d, want %d", res.status, tt.wantCode)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.wantType)
			}
			if tt.wantCode == 200 && !bytes.Equal(res.body, bigContent) {
				t.Errorf("200 body is not the whole file")
			}
			if res.status == 206 && strings.HasPrefix(res.header.Get("Content-Type"), "multipart/") {
				checkMultipart(t, res, bigContent, "application/octet-stream")
			}
		})
	}
}

// TestErrorKeepsForeignEncoding checks that a Content-Encoding set by a
// compressing writer before ServeContent stays on an error, which that
// writer encodes too, while this package's own never reaches one.
func TestErrorKeepsForeignEncoding(t *testing.T) {
	tree := newTestTree(t)
	f, err := tree.root.Open("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	w := httptest.NewRecorder()
	w.Header().Set("Content-Encoding", "gzip")
	r := request("GET", "/hello.txt", "Range", "bytes=100-")
	ServeContent(w, r, "hello.txt", fi.ModTime(), f)
	if w.Code != http.StatusRequestedRangeNotSatisfiable || w.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("got %d with Content-Encoding %q, want 416 with gzip kept", w.Code, w.Header().Get("Content-Encoding"))
	}
	res := record(FileServer(tree.root), request("GET", "/style.css", "Accept-Encoding", "gzip", "Range", "bytes=100-"))
	if res.status != http.StatusRequestedRangeNotSatisfiable || res.header.Get("Content-Encoding") != "" {
		t.Errorf("sidecar: got %d with Content-Encoding %q, want 416 without", res.status, res.header.Get("Content-Encoding"))
	}
}
