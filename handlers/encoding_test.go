package handlers

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPreferredCodings(t *testing.T) {
	tests := []struct {
		name    string
		values  []string // Accept-Encoding field lines
		codings []coding
		want    string // chosen coding names, best first
	}{
		{"absent", nil, knownCodings, ""},
		{"empty", []string{""}, knownCodings, ""},
		{"gzip", []string{"gzip"}, knownCodings, "gzip"},
		{"browser", []string{"gzip, deflate, br, zstd"}, knownCodings, "br zstd gzip"},
		{"server order breaks ties", []string{"gzip, br"}, knownCodings, "br gzip"},
		{"client weights first", []string{"br;q=0.5, gzip"}, knownCodings, "gzip br"},
		{"weights with spaces", []string{"br ; q=0.5 , zstd;q=0.7"}, knownCodings, "zstd br"},
		{"star", []string{"*"}, knownCodings, "br zstd gzip"},
		{"star refused", []string{"*;q=0"}, knownCodings, ""},
		{"star with refusal", []string{"gzip;q=0, *"}, knownCodings, "br zstd"},
		{"explicit beats star", []string{"*;q=0, gzip"}, knownCodings, "gzip"},
		{"star weight", []string{"gzip;q=0.9, *;q=0.1"}, knownCodings, "gzip br zstd"},
		{"q=0", []string{"br;q=0"}, knownCodings, ""},
		{"q=0.000", []string{"br;q=0.000, gzip"}, knownCodings, "gzip"},
		{"q=0.001", []string{"br;q=0.001"}, knownCodings, "br"},
		{"q=1.000", []string{"zstd;q=1.000"}, knownCodings, "zstd"},
		{"q too precise", []string{"zstd;q=0.0001, gzip"}, knownCodings, "gzip"},
		{"q above 1", []string{"br;q=1.5, gzip"}, knownCodings, "gzip"},
		{"q not a number", []string{"br;q=abc, gzip"}, knownCodings, "gzip"},
		{"q empty", []string{"br;q=, gzip"}, knownCodings, "gzip"},
		{"q negative", []string{"br;q=-1, gzip"}, knownCodings, "gzip"},
		{"Q upper case", []string{"br;Q=0, gzip"}, knownCodings, "gzip"},
		{"other parameter", []string{"br;level=5"}, knownCodings, "br"},
		{"case-insensitive", []string{"GZIP, Br"}, knownCodings, "br gzip"},
		{"x-gzip", []string{"x-gzip"}, knownCodings, "gzip"},
		{"identity only", []string{"identity"}, knownCodings, ""},
		{"deflate only", []string{"deflate"}, knownCodings, ""},
		{"first entry counts", []string{"gzip;q=0, gzip"}, knownCodings, ""},
		{"several lines", []string{"gzip", "br"}, knownCodings, "br gzip"},
		{"junk", []string{" ; , ,,;;=,q=1"}, knownCodings, ""},
		{"prefix is not a match", []string{"gzipx, brotli, zst"}, knownCodings, ""},
		{"configured subset", []string{"br, gzip"}, []coding{{"gzip", ".gz"}}, "gzip"},
		{"configured order", []string{"br, gzip"}, []coding{{"gzip", ".gz"}, {"br", ".br"}}, "gzip br"},
		{"none configured", []string{"br, gzip"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("GET", "/")
			for _, v := range tt.values {
				r.Header.Add("Accept-Encoding", v)
			}
			order, n := preferredCodings(r, tt.codings)
			var got []string
			for _, i := range order[:n] {
				got = append(got, tt.codings[i].name)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestSidecars(t *testing.T) {
	tree := newTestTree(t)
	// A sidecar that is a directory, one that escapes the root, one that
	// is a symbolic link inside it.
	write := func(name, content string) {
		p := filepath.Join(tree.rootDir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, fixedTime, fixedTime); err != nil {
			t.Fatal(err)
		}
	}
	write("x.txt", "x identity\n")
	if err := os.Mkdir(filepath.Join(tree.rootDir, "x.txt.gz"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("y.txt", "y identity\n")
	if err := os.Symlink("../outside/secret.txt", filepath.Join(tree.rootDir, "y.txt.gz")); err != nil {
		t.Fatal(err)
	}
	write("z.txt", "z identity\n")
	if err := os.Symlink("style.css.gz", filepath.Join(tree.rootDir, "z.txt.gz")); err != nil {
		t.Fatal(err)
	}

	css := "text/css; charset=utf-8"
	tests := []struct {
		name       string
		opts       []Option
		path       string
		hdr        []string
		wantCode   int
		wantBody   string
		wantCE     string
		wantType   string
		wantETagOf string // file whose ETag is expected (with wantCE)
		wantCR     string // Content-Range
	}{
		{"no Accept-Encoding", nil, "/style.css", nil, 200, treeFiles["style.css"], "", css, "style.css", ""},
		{"identity", nil, "/style.css", []string{"Accept-Encoding", "identity"}, 200, treeFiles["style.css"], "", css, "style.css", ""},
		{"gzip", nil, "/style.css", []string{"Accept-Encoding", "gzip"}, 200, treeFiles["style.css.gz"], "gzip", css, "style.css.gz", ""},
		{"br preferred", nil, "/style.css", []string{"Accept-Encoding", "gzip, deflate, br, zstd"}, 200, treeFiles["style.css.br"], "br", css, "style.css.br", ""},
		{"zstd", nil, "/style.css", []string{"Accept-Encoding", "zstd, gzip"}, 200, treeFiles["style.css.zst"], "zstd", css, "style.css.zst", ""},
		{"client weight wins", nil, "/style.css", []string{"Accept-Encoding", "br;q=0.1, gzip"}, 200, treeFiles["style.css.gz"], "gzip", css, "style.css.gz", ""},
		{"q=0 refuses", nil, "/style.css", []string{"Accept-Encoding", "gzip;q=0"}, 200, treeFiles["style.css"], "", css, "style.css", ""},
		{"star", nil, "/style.css", []string{"Accept-Encoding", "*"}, 200, treeFiles["style.css.br"], "br", css, "style.css.br", ""},
		{"falls back to the next sidecar", nil, "/data", []string{"Accept-Encoding", "br, gzip"}, 200, treeFiles["data.gz"], "gzip", "text/html; charset=utf-8", "data.gz", ""},
		{"type sniffed from the original", nil, "/data", []string{"Accept-Encoding", "gzip"}, 200, treeFiles["data.gz"], "gzip", "text/html; charset=utf-8", "data.gz", ""},
		{"no sidecar for the coding", nil, "/hello.txt", []string{"Accept-Encoding", "gzip, br"}, 200, "Hello, world!\n", "", "text/plain; charset=utf-8", "hello.txt", ""},
		{"range of the encoded bytes", nil, "/style.css", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-4"}, 206, "GZIP-", "gzip", css, "style.css.gz", "bytes 0-4/19"},
		{"suffix range of the encoded bytes", nil, "/style.css", []string{"Accept-Encoding", "br", "Range", "bytes=-5"}, 206, "STYLE", "br", css, "style.css.br", "bytes 16-20/21"},
		{"WithEncodings subset", []Option{WithEncodings("gzip")}, "/style.css", []string{"Accept-Encoding", "br, gzip"}, 200, treeFiles["style.css.gz"], "gzip", css, "style.css.gz", ""},
		{"WithEncodings order", []Option{WithEncodings("zstd", "br")}, "/style.css", []string{"Accept-Encoding", "br, zstd"}, 200, treeFiles["style.css.zst"], "zstd", css, "style.css.zst", ""},
		{"WithEncodings off", []Option{WithEncodings()}, "/style.css", []string{"Accept-Encoding", "br, gzip"}, 200, treeFiles["style.css"], "", css, "style.css", ""},
		{"sidecar is a directory", nil, "/x.txt", []string{"Accept-Encoding", "gzip"}, 200, "x identity\n", "", "text/plain; charset=utf-8", "x.txt", ""},
		{"sidecar escapes the root", nil, "/y.txt", []string{"Accept-Encoding", "gzip"}, 200, "y identity\n", "", "text/plain; charset=utf-8", "y.txt", ""},
		{"sidecar is a link inside the root", nil, "/z.txt", []string{"Accept-Encoding", "gzip"}, 200, treeFiles["style.css.gz"], "gzip", "text/plain; charset=utf-8", "style.css.gz", ""},
		{"index page sidecar", []Option{WithIndex()}, "/sub/", []string{"Accept-Encoding", "gzip"}, 200, treeFiles["sub/index.html.gz"], "gzip", "text/html; charset=utf-8", "sub/index.html.gz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := record(FileServer(tree.root, tt.opts...), request("GET", tt.path, tt.hdr...))
			if res.status != tt.wantCode || string(res.body) != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", res.status, res.body, tt.wantCode, tt.wantBody)
			}
			if got := res.header.Get("Content-Encoding"); got != tt.wantCE {
				t.Errorf("Content-Encoding = %q, want %q", got, tt.wantCE)
			}
			if got := res.header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got, want := res.header.Get("Etag"), tree.etagOf(t, tt.wantETagOf, tt.wantCE); got != want {
				t.Errorf("Etag = %q, want %q", got, want)
			}
			if got, want := res.header.Get("Content-Length"), len(tt.wantBody); got != strconv.Itoa(want) {
				t.Errorf("Content-Length = %q, want %d", got, want)
			}
			if got := res.header.Get("Content-Range"); got != tt.wantCR {
				t.Errorf("Content-Range = %q, want %q", got, tt.wantCR)
			}
			wantVary := "Accept-Encoding"
			if len(tt.opts) == 1 && tt.name == "WithEncodings off" {
				wantVary = ""
			}
			if got := res.header.Get("Vary"); got != wantVary {
				t.Errorf("Vary = %q, want %q", got, wantVary)
			}
			if strings.Contains(string(res.body), outsideSecret) {
				t.Errorf("body leaks the secret")
			}
		})
	}
}

// TestSidecarConditionals checks validators and error statuses of the
// encoded representation.
func TestSidecarConditionals(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root, WithCacheControl("max-age=60"))
	gzETag := tree.etagOf(t, "style.css.gz", "gzip")
	idETag := tree.etagOf(t, "style.css", "")
	tests := []struct {
		name     string
		method   string
		hdr      []string
		wantCode int
		wantCE   string
		wantCL   string
		wantBody string
	}{
		{"If-None-Match with the gzip tag", "GET", []string{"If-None-Match", gzETag}, 304, "", "", ""},
		{"If-None-Match with the identity tag", "GET", []string{"If-None-Match", idETag}, 200, "gzip", "19", treeFiles["style.css.gz"]},
		{"If-Match with the identity tag", "GET", []string{"If-Match", idETag}, 412, "", "", ""},
		{"If-Range with the identity tag", "GET", []string{"If-Range", idETag, "Range", "bytes=0-1"}, 200, "gzip", "19", treeFiles["style.css.gz"]},
		{"If-Range with the gzip tag", "GET", []string{"If-Range", gzETag, "Range", "bytes=0-1"}, 206, "gzip", "2", "GZ"},
		{"unsatisfiable", "GET", []string{"Range", "bytes=100-"}, 416, "", "", "invalid range: failed to overlap\n"},
		{"malformed range", "GET", []string{"Range", "bytes=x"}, 416, "", "", "invalid range\n"},
		{"HEAD", "HEAD", nil, 200, "gzip", "19", ""},
		{"HEAD range", "HEAD", []string{"Range", "bytes=0-1"}, 206, "gzip", "2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := record(fs, request(tt.method, "/style.css", append([]string{"Accept-Encoding", "gzip"}, tt.hdr...)...))
			if res.status != tt.wantCode || string(res.body) != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", res.status, res.body, tt.wantCode, tt.wantBody)
			}
			if got := res.header.Get("Content-Encoding"); got != tt.wantCE {
				t.Errorf("Content-Encoding = %q, want %q", got, tt.wantCE)
			}
			if got := res.header.Get("Content-Length"); got != tt.wantCL {
				t.Errorf("Content-Length = %q, want %q", got, tt.wantCL)
			}
			if got := res.header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary = %q", got)
			}
			wantCC := "max-age=60"
			if tt.wantCode == 416 {
				wantCC = "" // http.ServeContent strips it from errors
			}
			if got := res.header.Get("Cache-Control"); got != wantCC {
				t.Errorf("Cache-Control = %q, want %q", got, wantCC)
			}
		})
	}
}

func TestSidecarMultiRange(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root)
	gz := tree.read(t, "style.css.gz")
	res := record(fs, request("GET", "/style.css", "Accept-Encoding", "gzip", "Range", "bytes=0-3,5-8"))
	if res.status != 206 {
		t.Fatalf("status = %d", res.status)
	}
	if n := checkMultipart(t, res, gz, "text/css; charset=utf-8"); n != 2 {
		t.Errorf("%d parts", n)
	}
	if got := res.header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding = %q", got)
	}
	// Same response as http.ServeContent given the same header fields.
	want := record(netHTTPHandler(t, filepath.Join(tree.rootDir, "style.css.gz"), "style.css", http.Header{
		"Etag":             {tree.etagOf(t, "style.css.gz", "gzip")},
		"Vary":             {"Accept-Encoding"},
		"Content-Type":     {"text/css; charset=utf-8"},
		"Content-Encoding": {"gzip"},
	}), request("GET", "/", "Range", "bytes=0-3,5-8"))
	if d := diffResponses(res, want); d != "" {
		t.Errorf("differs from net/http:\n%s", d)
	}
}

func TestWithEncodingsPanics(t *testing.T) {
	for _, args := range [][]string{{"deflate"}, {"gzip", "GZIP"}, {""}, {"identity"}} {
		t.Run(strings.Join(args, ","), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("WithEncodings(%q) did not panic", args)
				}
			}()
			WithEncodings(args...)
		})
	}
}

func TestAddVary(t *testing.T) {
	h := http.Header{}
	addVary(h, "Accept-Encoding")
	addVary(h, "Accept-Encoding")
	if got := h.Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding" {
		t.Errorf("Vary = %q", got)
	}
}
