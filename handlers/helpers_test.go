package handlers

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Secrets that must never appear in a response body.
const (
	outsideSecret = "TOP-SECRET-OUTSIDE-THE-ROOT"
	dotSecret     = "DOT-SECRET-IN-A-DOTFILE"
)

// fixedTime is the modification time of every file in the test tree.
var fixedTime = time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)

// testTree is a file tree on disk:
//
//	outside/secret.txt            outsideSecret
//	root/hello.txt                "Hello, world!\n"
//	root/big.bin                  64 KiB of pattern bytes
//	root/noext                    text without an extension
//	root/page.html
//	root/style.css, .css.br, .css.gz, .css.zst
//	root/data, data.gz            (no extension: type sniffed from data)
//	root/only.gz                  (sidecar without original)
//	root/sub/index.html, sub/file.txt, sub/index.html.gz
//	root/empty/                   (directory without index)
//	root/.env, .env.gz            dotSecret
//	root/.git/config              dotSecret
//	root/.well-known/security.txt
//	root/link-in.txt -> hello.txt
//	root/link-dir -> sub
//	root/link-out -> ../outside/secret.txt
//	root/link-abs -> <abs>/outside/secret.txt
//	root/link-dot.txt -> .env
//	root/weird names (see below)
type testTree struct {
	dir     string // parent of root and outside
	rootDir string
	root    *os.Root
}

var bigContent = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
		if i%61 == 60 {
			b[i] = '\n'
		}
	}
	return b
}()

func gzipString(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

var treeFiles = map[string]string{
	"hello.txt":                       "Hello, world!\n",
	"zero.txt":                        "",
	"noext":                           "just some plain text without an extension\n",
	"page.html":                       "<!doctype html><title>page</title>\n",
	"style.css":                       "body { color: black; } /* identity */\n",
	"style.css.br":                    "BROTLI-BYTES-OF-STYLE",
	"style.css.gz":                    "GZIP-BYTES-OF-STYLE",
	"style.css.zst":                   "ZSTD-BYTES-OF-STYLE",
	"data":                            "<html><body>sniffed as html</body></html>",
	"data.gz":                         "\x1f\x8b\x08\x00GZIP-BYTES-OF-DATA",
	"only.gz":                         "\x1f\x8b\x08\x00ONLY",
	"sub/index.html":                  "<p>sub index</p>\n",
	"sub/index.html.gz":               gzipString("<p>sub index</p>\n"),
	"sub/file.txt":                    "sub file\n",
	".env":                            dotSecret,
	".env.gz":                         dotSecret + "-gz",
	".git/config":                     dotSecret + "-git",
	".well-known/security.txt":        "Contact: mailto:security@example.com\n",
	"a b&c<d>'e\".txt":                "weird 1\n",
	"q?x#y%z.txt":                     "weird 2\n",
	"colon:name.txt":                  "weird 3\n",
	"ünïcödé.txt":                     "weird 4\n",
	`back\slash.txt`:                  "weird 5\n",
	"sub/deeper/file.txt":             "deeper\n",
	"dir-with-index-dir/index.html/x": "index.html is a directory here\n",
}

func newTestTree(tb testing.TB) *testTree {
	tb.Helper()
	dir := tb.TempDir()
	t := &testTree{dir: dir, rootDir: filepath.Join(dir, "root")}
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chtimes(p, fixedTime, fixedTime); err != nil {
			tb.Fatal(err)
		}
	}
	write("outside/secret.txt", outsideSecret)
	write("root/big.bin", string(bigContent))
	for name, content := range treeFiles {
		write("root/"+name, content)
	}
	if err := os.MkdirAll(filepath.Join(t.rootDir, "empty"), 0o755); err != nil {
		tb.Fatal(err)
	}
	links := map[string]string{
		"link-in.txt":  "hello.txt",
		"link-dir":     "sub",
		"link-out":     "../outside/secret.txt",
		"link-abs":     filepath.Join(dir, "outside", "secret.txt"),
		"link-dot.txt": ".env",
		"sub/link-up":  "../hello.txt",
		"sub/link-esc": "../../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(t.rootDir, filepath.FromSlash(name))); err != nil {
			tb.Fatal(err)
		}
	}
	root, err := os.OpenRoot(t.rootDir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { root.Close() })
	t.root = root
	return t
}

// read returns the content of a file in the tree's root.
func (t *testTree) read(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(t.rootDir, filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// etagOf returns the ETag the package derives for a file in the root.
func (t *testTree) etagOf(tb testing.TB, rel, encoding string) string {
	tb.Helper()
	fi, err := os.Stat(filepath.Join(t.rootDir, filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatal(err)
	}
	return makeETag(fi, encoding)
}

// request builds a request with r.URL.Path set verbatim (no parsing, so any
// byte can be tested) and the given header fields.
func request(method, urlPath string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, "/", nil)
	r.URL.Path = urlPath
	r.RequestURI = ""
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// response is a recorded response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func record(h http.Handler, r *http.Request) response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: rec.Header(), body: body}
}

// normalize replaces a multipart boundary with a fixed string in the
// Content-Type header and the body, so two multipart responses compare.
func normalize(res response) response {
	ct := res.header.Get("Content-Type")
	const prefix = "multipart/byteranges; boundary="
	if !strings.HasPrefix(ct, prefix) {
		return res
	}
	boundary := ct[len(prefix):]
	h := res.header.Clone()
	h.Set("Content-Type", prefix+"BOUNDARY")
	return response{
		status: res.status,
		header: h,
		body:   bytes.ReplaceAll(res.body, []byte(boundary), []byte("BOUNDARY")),
	}
}

// diffResponses describes how got differs from want ("" if it does not).
func diffResponses(got, want response) string {
	got, want = normalize(got), normalize(want)
	var b strings.Builder
	if got.status != want.status {
		b.WriteString("status: got " + http.StatusText(got.status) + ", want " + http.StatusText(want.status) + "\n")
	}
	keys := map[string]bool{}
	for k := range got.header {
		keys[k] = true
	}
	for k := range want.header {
		keys[k] = true
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Equal(got.header[k], want.header[k]) {
			b.WriteString("header " + k + ": got " + strings.Join(got.header[k], "|") + ", want " + strings.Join(want.header[k], "|") + "\n")
		}
	}
	if !bytes.Equal(got.body, want.body) {
		b.WriteString("body differs: got " + quoteShort(got.body) + ", want " + quoteShort(want.body) + "\n")
	}
	return b.String()
}

func quoteShort(b []byte) string {
	if len(b) > 200 {
		return strings.ReplaceAll(string(b[:200]), "\r\n", "⏎") + "…"
	}
	return strings.ReplaceAll(string(b), "\r\n", "⏎")
}
