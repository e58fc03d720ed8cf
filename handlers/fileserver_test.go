package handlers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

const notFound = "404 page not found\n"

func TestFileServerPaths(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root)
	hello := "Hello, world!\n"

	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string // checked exactly
	}{
		{"plain file", "/hello.txt", 200, hello},
		{"no leading slash (StripPrefix)", "hello.txt", 200, hello},
		{"nested file", "/sub/file.txt", 200, "sub file\n"},
		{"deeper file", "/sub/deeper/file.txt", 200, "deeper\n"},
		{"missing", "/nope.txt", 404, notFound},
		{"missing nested", "/nope/nope.txt", 404, notFound},
		{"file below a file", "/hello.txt/x", 404, notFound},
		{"file with trailing slash", "/hello.txt/", 404, notFound},
		{"root without slash", "", 404, notFound},
		{"root", "/", 404, notFound},
		{"directory without index option", "/sub", 404, notFound},
		{"directory with slash without index option", "/sub/", 404, notFound},
		{"empty directory", "/empty/", 404, notFound},

		// Traversal, in every spelling r.URL.Path can carry after decoding.
		{"dotdot", "/../outside/secret.txt", 404, notFound},
		{"dotdot no slash", "../outside/secret.txt", 404, notFound},
		{"dotdot alone", "/..", 404, notFound},
		{"dotdot slash", "/../", 404, notFound},
		{"dotdot inside", "/sub/../hello.txt", 404, notFound},
		{"dotdot at end", "/sub/..", 404, notFound},
		{"decoded %2e%2e", "/%2e%2e/outside/secret.txt", 404, notFound}, // literal, if undecoded
		{"dot element", "/./hello.txt", 404, notFound},
		{"dot alone", "/.", 404, notFound},
		{"double slash", "//hello.txt", 404, notFound},
		{"double slash inside", "/sub//file.txt", 404, notFound},
		{"double slash host-like", "//evil.com", 404, notFound},
		{"triple slash", "///", 404, notFound},
		{"backslash dotdot", `/..\outside\secret.txt`, 404, notFound},
		{"backslash separator", `/sub\file.txt`, 404, notFound},
		{"backslash in existing name", `/back\slash.txt`, 404, notFound},
		{"NUL", "/hello.txt\x00", 404, notFound},
		{"NUL then extension", "/hello.txt\x00.png", 404, notFound},
		{"absolute path of the file", "/" + filepath.ToSlash(filepath.Join(tree.rootDir, "hello.txt")), 404, notFound},
		{"absolute path outside", filepath.ToSlash(filepath.Join(tree.dir, "outside", "secret.txt")), 404, notFound},
		{"long name", "/" + strings.Repeat("a", 300), 404, notFound},
		{"deep path", "/" + strings.Repeat("a/", 5000) + "x", 404, notFound},

		// Symbolic links.
		{"symlink inside", "/link-in.txt", 200, hello},
		{"symlinked directory", "/link-dir/file.txt", 200, "sub file\n"},
		{"symlink up but inside", "/sub/link-up", 200, hello},
		{"symlink out (relative)", "/link-out", 404, notFound},
		{"symlink out (absolute)", "/link-abs", 404, notFound},
		{"symlinked directory out", "/sub/link-esc/secret.txt", 404, notFound},
		{"symlink to a dotfile is the operator's choice", "/link-dot.txt", 200, dotSecret},

		// Dotfiles.
		{"dotfile", "/.env", 404, notFound},
		{"sidecar of a dotfile", "/.env.gz", 404, notFound},
		{"dot directory", "/.git/config", 404, notFound},
		{"dot directory itself", "/.git/", 404, notFound},
		{"well-known needs WithDotfiles", "/.well-known/security.txt", 404, notFound},
		{"dot in the middle is fine", "/sub/file.txt", 200, "sub file\n"},

		// Names that need escaping in URLs and HTML.
		{"unicode name", "/ünïcödé.txt", 200, "weird 4\n"},
		{"colon name", "/colon:name.txt", 200, "weird 3\n"},
		{"html name", "/a b&c<d>'e\".txt", 200, "weird 1\n"},
		{"query and fragment chars", "/q?x#y%z.txt", 200, "weird 2\n"},

		// Sidecars requested by name are ordinary files.
		{"sidecar by name", "/style.css.gz", 200, "GZIP-BYTES-OF-STYLE"},
		{"sidecar without original", "/only.gz", 200, "\x1f\x8b\x08\x00ONLY"},
		{"original of a lone sidecar", "/only", 404, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := record(fs, request("GET", tt.path))
			if res.status != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", res.status, tt.wantCode, res.body)
			}
			if string(res.body) != tt.wantBody {
				t.Fatalf("body = %q, want %q", res.body, tt.wantBody)
			}
			if tt.wantCode == 404 {
				if got := res.header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
					t.Errorf("404 Content-Type = %q", got)
				}
				for _, k := range []string{"Etag", "Last-Modified", "Vary", "Location"} {
					if v := res.header.Get(k); v != "" {
						t.Errorf("404 has %s: %q", k, v)
					}
				}
			}
		})
	}
}

func TestFileServerSidecarNameServedPlain(t *testing.T) {
	tree := newTestTree(t)
	res := record(FileServer(tree.root), request("GET", "/style.css.gz", "Accept-Encoding", "gzip, br"))
	if res.status != 200 || string(res.body) != "GZIP-BYTES-OF-STYLE" {
		t.Fatalf("got %d %q", res.status, res.body)
	}
	if ce := res.header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding = %q, want none", ce)
	}
	if got, want := res.header.Get("Etag"), tree.etagOf(t, "style.css.gz", ""); got != want {
		t.Errorf("Etag = %q, want %q", got, want)
	}
}

func TestFileServerDotfilesOption(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root, WithDotfiles())
	tests := []struct {
		name, path string
		wantCode   int
		wantBody   string
	}{
		{"well-known", "/.well-known/security.txt", 200, "Contact: mailto:security@example.com\n"},
		{"dotfile", "/.env", 200, dotSecret},
		{"dot element still refused", "/./hello.txt", 404, notFound},
		{"dotdot still refused", "/.well-known/../hello.txt", 404, notFound},
		{"symlink out still refused", "/link-out", 404, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := record(fs, request("GET", tt.path))
			if res.status != tt.wantCode || string(res.body) != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", res.status, res.body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestFileServerMethods(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "get", "PROPFIND"} {
		t.Run(method, func(t *testing.T) {
			res := record(fs, request(method, "/hello.txt"))
			if res.status != 405 {
				t.Fatalf("status = %d, want 405", res.status)
			}
			if got := res.header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("Allow = %q, want %q", got, "GET, HEAD")
			}
			if string(res.body) != "405 method not allowed\n" {
				t.Errorf("body = %q", res.body)
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		res := record(fs, request("HEAD", "/hello.txt"))
		if res.status != 200 || len(res.body) != 0 {
			t.Fatalf("got %d %q", res.status, res.body)
		}
		if got := res.header.Get("Content-Length"); got != "14" {
			t.Errorf("Content-Length = %q, want 14", got)
		}
		if got := res.header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type = %q", got)
		}
	})
}

func TestFileServerHeaders(t *testing.T) {
	tree := newTestTree(t)
	lastModified := fixedTime.UTC().Format(http.TimeFormat)
	tests := []struct {
		name string
		opts []Option
		path string
		want map[string]string // "" means absent
	}{
		{"defaults", nil, "/hello.txt", map[string]string{
			"Content-Type":        "text/plain; charset=utf-8",
			"Content-Length":      "14",
			"Accept-Ranges":       "bytes",
			"Last-Modified":       lastModified,
			"Etag":                tree.etagOf(t, "hello.txt", ""),
			"Vary":                "Accept-Encoding",
			"Cache-Control":       "",
			"Content-Disposition": "",
			"Content-Encoding":    "",
		}},
		{"sniffed type", nil, "/noext", map[string]string{
			"Content-Type": "text/plain; charset=utf-8",
		}},
		{"html", nil, "/page.html", map[string]string{
			"Content-Type": "text/html; charset=utf-8",
		}},
		{"cache control", []Option{WithCacheControl("public, max-age=60")}, "/hello.txt", map[string]string{
			"Cache-Control": "public, max-age=60",
		}},
		{"attachments", []Option{WithAttachments()}, "/sub/file.txt", map[string]string{
			"Content-Disposition": `attachment; filename="file.txt"; filename*=UTF-8''file.txt`,
		}},
		{"attachments unicode", []Option{WithAttachments()}, "/ünïcödé.txt", map[string]string{
			"Content-Disposition": `attachment; filename="_n_c_d_.txt"; filename*=UTF-8''%C3%BCn%C3%AFc%C3%B6d%C3%A9.txt`,
		}},
		{"encodings off: no Vary", []Option{WithEncodings()}, "/hello.txt", map[string]string{
			"Vary": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := record(FileServer(tree.root, tt.opts...), request("GET", tt.path))
			if res.status != 200 {
				t.Fatalf("status = %d", res.status)
			}
			for k, want := range tt.want {
				if got := strings.Join(res.header.Values(k), ", "); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestFileServerVaryKeepsOtherTokens(t *testing.T) {
	tree := newTestTree(t)
	fs := FileServer(tree.root)
	tests := []struct {
		name     string
		preset   []string
		wantVary []string
	}{
		{"none", nil, []string{"Accept-Encoding"}},
		{"other token", []string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{"already there", []string{"origin, accept-encoding"}, []string{"origin, accept-encoding"}},
		{"star", []string{"*"}, []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			for _, v := range tt.preset {
				rec.Header().Add("Vary", v)
			}
			fs.ServeHTTP(rec, request("GET", "/hello.txt"))
			if got := rec.Header().Values("Vary"); strings.Join(got, "|") != strings.Join(tt.wantVary, "|") {
				t.Errorf("Vary = %q, want %q", got, tt.wantVary)
			}
		})
	}
}

func TestFileServerDirectories(t *testing.T) {
	tree := newTestTree(t)
	if err := os.Mkdir(filepath.Join(tree.rootDir, "https:evil.com"), 0o755); err != nil {
		t.Fatal(err)
	}
	index := "<p>sub index</p>\n"
	tests := []struct {
		name         string
		opts         []Option
		path, query  string
		wantCode     int
		wantLocation string
		wantBody     string // exact unless wantInBody is set
		wantInBody   string
	}{
		{"index: redirect", []Option{WithIndex()}, "/sub", "", 301, "./sub/", "", ""},
		{"index: redirect keeps query", []Option{WithIndex()}, "/sub", "a=1&b=2", 301, "./sub/?a=1&b=2", "", ""},
		{"index: redirect under prefix", []Option{WithIndex()}, "sub/deeper", "", 301, "./deeper/", "", ""},
		{"index: redirect symlinked dir", []Option{WithIndex()}, "/link-dir", "", 301, "./link-dir/", "", ""},
		{"index: redirect never a scheme", []Option{WithIndex()}, "/https:evil.com", "", 301, "./https:evil.com/", "", ""},
		{"index: served", []Option{WithIndex()}, "/sub/", "", 200, "", index, ""},
		{"index: via symlinked dir", []Option{WithIndex()}, "/link-dir/", "", 200, "", index, ""},
		{"index: by name, no redirect", []Option{WithIndex()}, "/sub/index.html", "", 200, "", index, ""},
		{"index: none", []Option{WithIndex()}, "/empty/", "", 404, "", notFound, ""},
		{"index: root without index", []Option{WithIndex()}, "/", "", 404, "", notFound, ""},
		{"index: index.html is a directory", []Option{WithIndex()}, "/dir-with-index-dir/", "", 404, "", notFound, ""},
		{"index: dot directory", []Option{WithIndex()}, "/.git", "", 404, "", notFound, ""},
		{"listing: root", []Option{WithDirectoryListing()}, "/", "", 200, "", "", `<a href="hello.txt">hello.txt</a>`},
		{"listing: root without slash", []Option{WithDirectoryListing()}, "", "", 200, "", "", `<a href="sub/">sub/</a>`},
		{"listing: instead of index", []Option{WithDirectoryListing()}, "/sub/", "", 200, "", "", `<a href="index.html">index.html</a>`},
		{"listing: empty", []Option{WithDirectoryListing()}, "/empty/", "", 200, "",
			"<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n</pre>\n", ""},
		{"listing: redirect", []Option{WithDirectoryListing()}, "/empty", "", 301, "./empty/", "", ""},
		{"both: index wins", []Option{WithIndex(), WithDirectoryListing()}, "/sub/", "", 200, "", index, ""},
		{"both: listing without index", []Option{WithIndex(), WithDirectoryListing()}, "/dir-with-index-dir/", "", 200, "", "", `<a href="index.html/">index.html/</a>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("GET", tt.path)
			r.URL.RawQuery = tt.query
			res := record(FileServer(tree.root, tt.opts...), r)
			if res.status != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", res.status, tt.wantCode, res.body)
			}
			if got := res.header.Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
			switch {
			case tt.wantInBody != "":
				if !strings.Contains(string(res.body), tt.wantInBody) {
					t.Errorf("body %q does not contain %q", res.body, tt.wantInBody)
				}
			case string(res.body) != tt.wantBody:
				t.Errorf("body = %q, want %q", res.body, tt.wantBody)
			}
		})
	}
}

// TestTrailingSlashRedirect checks that the redirect adding a directory's
// slash leads back to the directory that was opened, whatever the request
// path's escaping, and stays a relative path below the current URL.
func TestTrailingSlashRedirect(t *testing.T) {
	tree := newTestTree(t)
	if err := os.MkdirAll(filepath.Join(tree.rootDir, "a b", "c%d"), 0o755); err != nil {
		t.Fatal(err)
	}
	fs := FileServer(tree.root, WithIndex())
	tests := []struct {
		name, path, rawPath, want string
	}{
		{"plain", "/sub/deeper", "", "./deeper/"},
		{"escaped slash", "/sub/deeper", "/sub%2Fdeeper", "./sub/deeper/"},
		{"escaped slash, first segment", "/sub/deeper", "/sub%2fdeeper", "./sub/deeper/"},
		{"escaped letters", "/sub/deeper", "/s%75b/d%65eper", "./deeper/"},
		{"space and percent", "/a b/c%d", "/a%20b%2Fc%25d", "./a%20b/c%25d/"},
		{"under StripPrefix", "sub/deeper", "sub%2Fdeeper", "./sub/deeper/"},
		{"raw path that does not match", "/sub/deeper", "/x%2Fy", "./deeper/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("GET", tt.path)
			r.URL.RawPath = tt.rawPath
			res := record(fs, r)
			if res.status != 301 || res.header.Get("Location") != tt.want {
				t.Fatalf("got %d Location %q, want 301 %q", res.status, res.header.Get("Location"), tt.want)
			}
			if !redirectTarget.MatchString(tt.want) {
				t.Errorf("%q is not a relative path below the current URL", tt.want)
			}
		})
	}
}

// TestDirectoryListingHidesWhatAnswers404 checks that a listing leaves out
// the entries a request would get 404 for: symbolic links out of the root,
// and dotfiles; links inside it are shown, a link to a directory as one.
func TestDirectoryListingHidesWhatAnswers404(t *testing.T) {
	tree := newTestTree(t)
	res := record(FileServer(tree.root, WithDirectoryListing()), request("GET", "/"))
	if res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	for _, name := range []string{`href="link-out"`, `href="link-abs"`, `href=".env"`, "back%5Cslash"} {
		if strings.Contains(string(res.body), name) {
			t.Errorf("listing shows %s", name)
		}
	}
	for _, name := range []string{`<a href="link-in.txt">link-in.txt</a>`, `<a href="link-dir/">link-dir/</a>`, `<a href="link-dot.txt">link-dot.txt</a>`} {
		if !strings.Contains(string(res.body), name) {
			t.Errorf("listing lacks %s", name)
		}
	}
	res = record(FileServer(tree.root, WithDirectoryListing()), request("GET", "/sub/"))
	if strings.Contains(string(res.body), "link-esc") || !strings.Contains(string(res.body), `<a href="link-up">link-up</a>`) {
		t.Errorf("sub listing:\n%s", res.body)
	}
}

func TestDirectoryListingEscapes(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a b&c<d>'e\".txt", "q?x#y%z.txt", "colon:name.txt", "ünï.txt", ".hidden", `back\slash`, "<script>alert(1)<", "plain"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d&ir"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	want := "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n" +
		"<a href=\"%3Cscript%3Ealert%281%29%3C\">&lt;script&gt;alert(1)&lt;</a>\n" +
		"<a href=\"a%20b&amp;c%3Cd%3E%27e%22.txt\">a b&amp;c&lt;d&gt;&#39;e&#34;.txt</a>\n" +
		"<a href=\"./colon:name.txt\">colon:name.txt</a>\n" +
		"<a href=\"d&amp;ir/\">d&amp;ir/</a>\n" +
		"<a href=\"plain\">plain</a>\n" +
		"<a href=\"q%3Fx%23y%25z.txt\">q?x#y%z.txt</a>\n" +
		"<a href=\"%C3%BCn%C3%AF.txt\">ünï.txt</a>\n" +
		"</pre>\n"
	res := record(FileServer(root, WithDirectoryListing()), request("GET", "/"))
	if res.status != 200 {
		t.Fatalf("status = %d", res.status)
	}
	if string(res.body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", res.body, want)
	}
	if got := res.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}

	t.Run("dotfiles shown with WithDotfiles", func(t *testing.T) {
		res := record(FileServer(root, WithDirectoryListing(), WithDotfiles()), request("GET", "/"))
		if !strings.Contains(string(res.body), `<a href=".hidden">.hidden</a>`) {
			t.Errorf("body %q lacks .hidden", res.body)
		}
	})
	t.Run("If-Modified-Since", func(t *testing.T) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		ims := fi.ModTime().Add(2e9).UTC().Format(http.TimeFormat)
		res := record(FileServer(root, WithDirectoryListing()), request("GET", "/", "If-Modified-Since", ims))
		if res.status != 304 || len(res.body) != 0 {
			t.Errorf("got %d %q, want 304", res.status, res.body)
		}
	})
}

// TestFileServerUnderChi mounts the handler as the brief's users will:
// r.Handle("/files/*", http.StripPrefix("/files/", fs)), over a real server.
func TestFileServerUnderChi(t *testing.T) {
	tree := newTestTree(t)
	r := chi.NewRouter()
	r.Handle("/files/*", http.StripPrefix("/files/", FileServer(tree.root, WithIndex())))
	ts := httptest.NewServer(r)
	defer ts.Close()
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name, path   string
		wantCode     int
		wantBody     string
		wantLocation string
	}{
		{"file", "/files/hello.txt", 200, "Hello, world!\n", ""},
		{"nested", "/files/sub/file.txt", 200, "sub file\n", ""},
		{"directory redirect", "/files/sub", 301, "", "./sub/"},
		{"index", "/files/sub/", 200, "<p>sub index</p>\n", ""},
		{"encoded dotdot", "/files/%2e%2e/%2e%2e/outside/secret.txt", 404, notFound, ""},
		{"encoded slash dotdot", "/files/..%2f..%2foutside%2fsecret.txt", 404, notFound, ""},
		{"double slash", "/files//etc/passwd", 404, notFound, ""},
		{"encoded NUL", "/files/hello.txt%00.png", 404, notFound, ""},
		{"encoded backslash", "/files/..%5c..%5coutside%5csecret.txt", 404, notFound, ""},
		{"dotfile", "/files/.env", 404, notFound, ""},
		{"symlink out", "/files/link-out", 404, notFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", ts.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantCode || string(body) != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, body, tt.wantCode, tt.wantBody)
			}
			if got := res.Header.Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
		})
	}
}

// TestFileServerRawRequests sends request lines byte for byte over a real
// connection, so nothing between the test and the handler cleans the path.
func TestFileServerRawRequests(t *testing.T) {
	tree := newTestTree(t)
	ts := httptest.NewServer(FileServer(tree.root, WithIndex(), WithDirectoryListing()))
	defer ts.Close()
	targets := []string{
		"/../outside/secret.txt",
		"/%2e%2e/outside/secret.txt",
		"/%2E%2E%2Foutside%2Fsecret.txt",
		"/..%2foutside%2fsecret.txt",
		"/sub/..%2f..%2foutside/secret.txt",
		"//outside/secret.txt",
		"/..\\outside\\secret.txt",
		"/%5c..%5coutside%5csecret.txt",
		"/link-out",
		"/link-abs",
		"/sub/link-esc/secret.txt",
		"/.env",
		"/.env.gz",
		"/%2eenv",
		"/.git/config",
		"/hello.txt%00",
		"/" + filepath.ToSlash(filepath.Join(tree.dir, "outside", "secret.txt")),
		"http://example.com/../outside/secret.txt",
		"*",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			// 404 from the handler, or 400 from net/http for a target it
			// rejects before any handler runs.
			if res.StatusCode != 404 && res.StatusCode != 400 {
				t.Errorf("status = %d, want 404 (or 400 from net/http)", res.StatusCode)
			}
			if res.StatusCode == 404 && string(body) != notFound {
				t.Errorf("body = %q", body)
			}
			for _, secret := range []string{outsideSecret, dotSecret, tree.dir} {
				if strings.Contains(string(body), secret) {
					t.Errorf("body %q leaks %q", body, secret)
				}
			}
		})
	}
}

func TestFileServerNilRootPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("FileServer(nil) did not panic")
		}
	}()
	FileServer(nil)
}

func TestResolvePath(t *testing.T) {
	tests := []struct {
		in       string
		dotfiles bool
		name     string
		dir, ok  bool
	}{
		{"", false, ".", true, true},
		{"/", false, ".", true, true},
		{"/a", false, "a", false, true},
		{"a", false, "a", false, true},
		{"/a/", false, "a", true, true},
		{"/a/b.txt", false, filepath.FromSlash("a/b.txt"), false, true},
		{"//", false, "", false, false},
		{"/a//", false, "", false, false},
		{"/a//b", false, "", false, false},
		{"/.", false, "", false, false},
		{"/./", false, "", false, false},
		{"/..", false, "", false, false},
		{"/a/../b", false, "", false, false},
		{"/a/./b", false, "", false, false},
		{"/.a", false, "", false, false},
		{"/.a", true, ".a", false, true},
		{"/b/.a/c", false, "", false, false},
		{"/b/.a/c", true, filepath.FromSlash("b/.a/c"), false, true},
		{"/..", true, "", false, false},
		{"/a\\b", false, "", false, false},
		{"/a\x00b", false, "", false, false},
		{"/a.b.c", false, "a.b.c", false, true},
		{"/a..b", false, "a..b", false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q dotfiles=%v", tt.in, tt.dotfiles), func(t *testing.T) {
			name, dir, ok := resolvePath(tt.in, tt.dotfiles)
			if name != tt.name || dir != tt.dir || ok != tt.ok {
				t.Errorf("resolvePath(%q) = %q, %v, %v; want %q, %v, %v", tt.in, name, dir, ok, tt.name, tt.dir, tt.ok)
			}
		})
	}
}
