//go:build linux

package main

import (
	"bytes"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/strace"
)

func TestEvenRanges(t *testing.T) {
	rs, err := evenRanges(256<<20, 8, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := "bytes=0-16777215,33554432-50331647,67108864-83886079,100663296-117440511," +
		"134217728-150994943,167772160-184549375,201326592-218103807,234881024-251658239"
	if got := rangeHeader(rs); got != want {
		t.Errorf("8 × 16 MiB of 256 MiB:\n got %s\nwant %s", got, want)
	}
	// Ranges that fill their stride exactly touch; size/n rounds down.
	rs, err = evenRanges(10, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rangeHeader(rs), "bytes=0-2,3-5,6-8"; got != want {
		t.Errorf("3 × 3 of 10: got %s, want %s", got, want)
	}
	if got, want := rangeHeader([]byteRange{{start: 5, length: 1}}), "bytes=5-5"; got != want {
		t.Errorf("one byte: got %s, want %s", got, want)
	}
	for _, tt := range []struct {
		size, length int64
		n            int
		want         string
	}{
		{size: 10, n: 3, length: 4, want: "3 ranges of 4 bytes do not fit apart in 10 bytes"},
		{size: 10, n: 0, length: 1, want: "0 ranges of 1 bytes: want at least one range of at least one byte"},
		{size: 10, n: 1, length: 0, want: "1 ranges of 0 bytes: want at least one range of at least one byte"},
	} {
		if _, err := evenRanges(tt.size, tt.n, tt.length); err == nil || err.Error() != tt.want {
			t.Errorf("evenRanges(%d, %d, %d): error %v, want %q", tt.size, tt.n, tt.length, err, tt.want)
		}
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[int64]string{16 << 20: "16 MiB", 64 << 10: "64 KiB", 1 << 30: "1 GiB", 1536: "1536 B", 3 << 29: "1536 MiB", 7: "7 B"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
	if got, want := (rangeCase{ranges: 64, partSize: 64 << 10}).String(), "64 × 64 KiB"; got != want {
		t.Errorf("case name %q, want %q", got, want)
	}
}

// known is "0123456789abcdefghij" asked for as bytes=2-4,10-13.
const (
	knownContent = "0123456789abcdefghij"
	knownBody    = "--B\r\nContent-Range: bytes 2-4/20\r\n\r\n234\r\n" +
		"--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-13/20\r\n\r\nabcd\r\n--B--\r\n"
)

var knownRanges = []byteRange{{start: 2, length: 3}, {start: 10, length: 4}}

func TestVerifyMultipart(t *testing.T) {
	ok := "multipart/byteranges; boundary=B"
	for _, tt := range []struct {
		name        string
		ctype, body string
		length      int64
		want        string // error, "" for none
		wantBytes   int64
	}{
		{name: "exact", ctype: ok, body: knownBody, length: int64(len(knownBody)), wantBytes: 7},
		{name: "no Content-Length", ctype: ok, body: knownBody, length: -1, wantBytes: 7},
		{name: "epilogue", ctype: ok, body: knownBody + "bye\r\n", length: int64(len(knownBody)) + 5, wantBytes: 7},
		{name: "Content-Length", ctype: ok, body: knownBody, length: int64(len(knownBody)) + 1, wantBytes: 7,
			want: "body of 118 bytes, Content-Length 119"},
		{name: "not multipart", ctype: "text/plain", body: knownBody, length: -1,
			want: `Content-Type "text/plain" is not multipart/byteranges with a boundary`},
		{name: "no boundary", ctype: "multipart/byteranges", body: knownBody, length: -1,
			want: `Content-Type "multipart/byteranges" is not multipart/byteranges with a boundary`},
		{name: "wrong byte", ctype: ok, body: strings.Replace(knownBody, "abcd", "abXd", 1), length: -1, wantBytes: 7,
			want: "part 2 (bytes 10-13/20): byte 2 is 0x58, want 0x63"},
		{name: "short part", ctype: ok, body: strings.Replace(knownBody, "234", "23", 1), length: -1, wantBytes: 2,
			want: "part 1 (bytes 2-4/20): 2 bytes, want 3"},
		{name: "long part", ctype: ok, body: strings.Replace(knownBody, "234", "2345", 1), length: -1, wantBytes: 4,
			want: "part 1 (bytes 2-4/20): more than 3 bytes"},
		{name: "wrong Content-Range", ctype: ok, body: strings.Replace(knownBody, "bytes 10-13/20", "bytes 10-13/21", 1), length: -1, wantBytes: 3,
			want: `part 2: Content-Range ["bytes 10-13/21"], want "bytes 10-13/20"`},
		{name: "missing part", ctype: ok, body: knownBody[:strings.Index(knownBody, "--B\r\nContent-Type")] + "--B--\r\n", length: -1, wantBytes: 3,
			want: "1 parts, want 2"},
		{name: "extra part", ctype: ok, body: strings.TrimSuffix(knownBody, "--B--\r\n") + "--B\r\nContent-Range: bytes 0-0/20\r\n\r\n0\r\n--B--\r\n", length: -1, wantBytes: 7,
			want: "more than the 2 parts asked for"},
		{name: "cut in a header", ctype: ok, body: knownBody[:60], length: -1, wantBytes: 3,
			want: "1 parts, want 2"},
		{name: "cut in a part", ctype: ok, body: knownBody[:107], length: -1, wantBytes: 5,
			want: "part 2 (bytes 10-13/20): unexpected EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := verifyMultipart(tt.ctype, tt.length, strings.NewReader(tt.body), []byte(knownContent), knownRanges)
			if got := errString(err); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
			if n != tt.wantBytes {
				t.Errorf("%d part bytes, want %d", n, tt.wantBytes)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestVerifyServers checks that the verification accepts what the two Go
// servers answer, and catches a part of another file.
func TestVerifyServers(t *testing.T) {
	dir := t.TempDir()
	content := make([]byte, 1<<20)
	for i := range content {
		content[i] = byte(i*7 + i>>8)
	}
	if err := os.WriteFile(filepath.Join(dir, fileName), content, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ranges, err := evenRanges(int64(len(content)), 5, 100<<10)
	if err != nil {
		t.Fatal(err)
	}
	netHTTP := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, fileName, time.Unix(1e9, 0), bytes.NewReader(content))
	})
	for name, h := range map[string]http.Handler{"net/http": netHTTP, "fastpath": handlers.FileServer(root)} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			req := httptest.NewRequest("GET", "/"+fileName, nil)
			req.Header.Set("Range", rangeHeader(ranges))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusPartialContent {
				t.Fatalf("status %d", rec.Code)
			}
			ctype := rec.Header().Get("Content-Type")
			if mt, _, _ := mime.ParseMediaType(ctype); mt != "multipart/byteranges" {
				t.Fatalf("Content-Type %q", ctype)
			}
			body := rec.Body.Bytes()
			n, err := verifyMultipart(ctype, int64(len(body)), bytes.NewReader(body), content, ranges)
			if err != nil || n != 5*100<<10 {
				t.Errorf("verify: %d bytes, %v; want %d, nil", n, err, 5*100<<10)
			}
			other := bytes.Clone(content)
			other[2*(len(content)/5)+1234]++
			_, err = verifyMultipart(ctype, int64(len(body)), bytes.NewReader(body), other, ranges)
			want := "part 3 (bytes 419430-521829/1048576): byte 1234 is 0x" // then the two bytes
			if got := errString(err); !strings.HasPrefix(got, want) {
				t.Errorf("verify against another file: error %q, want %q...", got, want)
			}
		})
	}
}

func TestPerRequestAndRatio(t *testing.T) {
	for _, tt := range []struct {
		n        int64
		requests int
		want     string
	}{{8, 4, "2"}, {9, 4, "2.2"}, {10, 4, "2.5"}, {0, 4, "0"}, {-3, 4, "-0.8"}, {5, 0, "-"}} {
		if got := perRequest(tt.n, tt.requests); got != tt.want {
			t.Errorf("perRequest(%d, %d) = %q, want %q", tt.n, tt.requests, got, tt.want)
		}
	}
	for _, tt := range []struct {
		v, base float64
		want    string
	}{{1, 1, "1.00x"}, {27, 100, "0.27x"}, {10, 100, "0.10x"}, {43.75, 2061.5, "1/47"}, {0, 5, "0"}, {5, 0, "-"}, {300, 100, "3.00x"}} {
		if got := ratio(tt.v, tt.base); got != tt.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tt.v, tt.base, got, tt.want)
		}
	}
}

func TestSubtractAndMedianRun(t *testing.T) {
	full := strace.Summary{"read": {Count: 10, Errors: 2, Sum: 100}, "sendfile": {Count: 5, Sum: 1 << 20}}
	idle := strace.Summary{"read": {Count: 3, Errors: 1, Sum: 30}, "pread64": {Count: 1, Sum: 3}}
	got := subtract(full, idle)
	want := strace.Summary{"read": {Count: 7, Errors: 1, Sum: 70}, "sendfile": {Count: 5, Sum: 1 << 20}, "pread64": {Count: -1, Sum: -3}}
	if len(got) != len(want) {
		t.Errorf("subtract: %v, want %v", got, want)
	}
	for name, c := range want {
		if got[name] != c {
			t.Errorf("subtract: %s = %+v, want %+v", name, got[name], c)
		}
	}
	r := &result{}
	if _, ok := r.median(); ok {
		t.Error("median of no traced run: ok")
	}
	for _, n := range []int64{30, 10, 20, 40} {
		r.runs = append(r.runs, newTracedRun(strace.Summary{"write": {Count: 2 * n}, "bind": {Count: 1000}}, 2))
	}
	if run, _ := r.median(); run.calls["write"].Count != 40 || run.total != 20 || run.requests != 2 {
		t.Errorf("median of 4 traced runs: %d writes, %d I/O calls per request, %d requests; want the lower middle: 40, 20, 2",
			run.calls["write"].Count, run.total, run.requests)
	}
}

func TestWriteTable(t *testing.T) {
	big := rangeCase{ranges: 8, partSize: 16 << 20, requests: 4}      // 512 MiB of parts per round
	small := rangeCase{ranges: 64, partSize: 64 << 10, requests: 128} // also 512 MiB
	traced := func(calls strace.Summary) []tracedRun { return []tracedRun{newTracedRun(calls, 4)} }
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	res := &results{cases: []*caseResult{
		{c: big, rows: []*result{
			{stack: sNetHTTP, cpu: ms(450, 400, 500, 460, 440), runs: traced(strace.Summary{
				"read": {Count: 16400}, "write": {Count: 16410}, "pread64": {Count: 2}})},
			{stack: sFastpath, cpu: ms(120, 100, 140, 110, 130), runs: traced(strace.Summary{
				"read": {Count: 15}, "write": {Count: 36}, "sendfile": {Count: 200, Errors: 20, Sum: 4*(128<<20) - 4*512}})},
			{stack: sNginx, cpu: ms(90, 80, 100, 85, 95), runs: traced(strace.Summary{
				"writev": {Count: 36}, "sendfile": {Count: 264, Sum: 4 * (128 << 20)}, "recvfrom": {Count: 4}})},
		}},
		{c: small, rows: []*result{
			{stack: sNetHTTP, cpu: ms(1000), runs: []tracedRun{newTracedRun(strace.Summary{"read": {Count: 16666}, "write": {Count: 24704}}, 128)}},
			{stack: sFastpath, cpu: ms(400)},
			{stack: sNginx, skipped: "nginx is not installed"},
		}},
	}}
	var out strings.Builder
	res.writeTable(&out)
	want := `| ranges | server | read | write | writev | sendfile | splice | pread64 | other | I/O syscalls | vs net/http | sendfile bytes | server CPU per GiB of parts, ms (quartiles) | vs net/http |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| 8 × 16 MiB | net/http | 4100 | 4102.5 | 0 | 0 | 0 | 0.5 | 0 | 8203 | 1.00x | 0 | 900 (880-920) | 1.00x |
| 8 × 16 MiB | fastpath | 3.8 | 9 | 0 | 50 | 0 | 0 | 0 | 62.8 | 1/131 | 134217216 | 240 (220-260) | 0.27x |
| 8 × 16 MiB | nginx | 0 | 0 | 9 | 66 | 0 | 0 | 1 | 76 | 1/108 | 134217728 | 180 (170-190) | 0.20x |
| 64 × 64 KiB | net/http | 130.2 | 193 | 0 | 0 | 0 | 0 | 0 | 323.2 | 1.00x | 0 | 2000 (2000-2000) | 1.00x |
| 64 × 64 KiB | fastpath | not traced | not traced | not traced | not traced | not traced | not traced | not traced | not traced | not traced | not traced | 800 (800-800) | 0.40x |
| 64 × 64 KiB | nginx | skipped: nginx is not installed | | | | | | | | | | | |
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}
