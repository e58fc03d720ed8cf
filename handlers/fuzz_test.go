package handlers

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// redirectTarget is the only form of Location FileServer may send: escaped
// path elements below the current URL.
var redirectTarget = regexp.MustCompile(`^\./(?:[^/?#\\]+/)+$`)

// FuzzFileServerPath checks, for any request path and Accept-Encoding, that
// path resolution only yields plain downward names, and that FileServer never
// panics, never answers 5xx, never serves anything from outside the root or
// from a dotfile, and only redirects to "./name/".
func FuzzFileServerPath(f *testing.F) {
	for _, seed := range []struct{ path, ae string }{
		{"/hello.txt", ""},
		{"/style.css", "gzip, br"},
		{"/../outside/secret.txt", ""},
		{"/%2e%2e/outside/secret.txt", ""},
		{"/..%2f..%2foutside/secret.txt", "*"},
		{"//outside/secret.txt", ""},
		{`/..\outside\secret.txt`, ""},
		{"/hello.txt\x00.png", ""},
		{"/.env", "gzip"},
		{"/.git/config", ""},
		{"/link-out", ""},
		{"/sub/link-esc/secret.txt", ""},
		{"/sub", ""},
		{"/sub/", "gzip;q=0, *"},
		{"/", ""},
		{"", ""},
		{"/link-dir/../../outside/secret.txt", ""},
	} {
		f.Add(seed.path, seed.ae)
	}
	tree := newTestTree(f)
	// The operator-made link to a dotfile is served on purpose; drop it so
	// the property "no dotfile content" is about request paths.
	if err := os.Remove(filepath.Join(tree.rootDir, "link-dot.txt")); err != nil {
		f.Fatal(err)
	}
	servers := []http.Handler{
		FileServer(tree.root),
		FileServer(tree.root, WithIndex(), WithDirectoryListing()),
	}

	f.Fuzz(func(t *testing.T, p, ae string) {
		for _, dotfiles := range []bool{false, true} {
			name, _, ok := resolvePath(p, dotfiles)
			if !ok {
				continue
			}
			if !filepath.IsLocal(name) {
				t.Fatalf("resolvePath(%q) = %q: not local", p, name)
			}
			for _, elem := range strings.Split(filepath.ToSlash(name), "/") {
				if elem == "" || elem == ".." || (elem == "." && name != ".") || strings.ContainsAny(elem, "\\\x00") {
					t.Fatalf("resolvePath(%q) = %q: element %q", p, name, elem)
				}
				if !dotfiles && strings.HasPrefix(elem, ".") && name != "." {
					t.Fatalf("resolvePath(%q) = %q: dotfile element %q", p, name, elem)
				}
			}
		}

		for _, fs := range servers {
			for _, method := range []string{"GET", "HEAD"} {
				r := request(method, p)
				if ae != "" {
					r.Header.Set("Accept-Encoding", ae)
				}
				res := record(fs, r)
				switch res.status {
				case 200, 301, 404:
				default:
					t.Fatalf("%s %q: status %d", method, p, res.status)
				}
				for _, secret := range []string{outsideSecret, dotSecret, tree.dir} {
					if bytes.Contains(res.body, []byte(secret)) {
						t.Fatalf("%s %q: body leaks %q", method, p, secret)
					}
				}
				if loc := res.header.Get("Location"); res.status == 301 && !redirectTarget.MatchString(loc) {
					t.Fatalf("%q: Location %q", p, loc)
				}
				if res.status == 404 && string(res.body) != notFound && method == "GET" {
					t.Fatalf("%q: 404 body %q", p, res.body)
				}
			}
		}
	})
}

// FuzzServeContent is the differential fuzz target: for any method, Range,
// If-Range, If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since, ServeContent must never panic or answer 5xx, must
// answer exactly as http.ServeContent does except for the deviations the
// package documentation lists (encoded in netHTTPEquivalent), and every
// multipart part must hold the file's bytes for its Content-Range.
//
// In the inputs, ETAG stands for the file's entity tag and LM for its
// Last-Modified date. Only field values that net/http's server could hand a
// handler are tried (see deliverable).
func FuzzServeContent(f *testing.F) {
	for _, rc := range rangeCases {
		f.Add("GET", rc.value, "", "", "", "", "")
	}
	for _, cc := range conditionalCases(`ETAG`, fixedTime) {
		in := map[string]string{}
		for i := 0; i+1 < len(cc.header); i += 2 {
			in[cc.header[i]] = cc.header[i+1]
		}
		f.Add("GET", "bytes=0-9,20-29", in["If-Range"], in["If-Match"], in["If-None-Match"], in["If-Modified-Since"], in["If-Unmodified-Since"])
	}
	f.Add("HEAD", "bytes=0-9,20-29", "LM", "", "", "", "")
	f.Add("POST", "bytes=0-9", "", "", "ETAG", "", "")

	dir := f.TempDir()
	content := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz0123456789\n"), 40) // 1480 bytes
	path := filepath.Join(dir, "file.txt")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.Chtimes(path, fixedTime, fixedTime); err != nil {
		f.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		f.Fatal(err)
	}
	etag := makeETag(fi, "")
	lm := fixedTime.UTC().Format(http.TimeFormat)
	mine := serveContentHandler(f, path, "file.txt")
	ref := netHTTPHandler(f, path, "file.txt", http.Header{"Etag": {etag}})
	size := int64(len(content))

	f.Fuzz(func(t *testing.T, method, rangeV, ifRange, ifMatch, ifNoneMatch, ims, ius string) {
		if method == "" {
			method = "GET"
		}
		if !tokenRE.MatchString(method) {
			t.Skip("not a method token")
		}
		var hdr []string
		for _, kv := range [][2]string{
			{"Range", rangeV}, {"If-Range", ifRange}, {"If-Match", ifMatch},
			{"If-None-Match", ifNoneMatch}, {"If-Modified-Since", ims}, {"If-Unmodified-Since", ius},
		} {
			v := strings.ReplaceAll(strings.ReplaceAll(kv[1], "ETAG", etag), "LM", lm)
			if v == "" {
				continue
			}
			if !deliverable(v) {
				t.Skip("not a deliverable field value")
			}
			hdr = append(hdr, kv[0], v)
		}
		got := record(mine, request(method, "/", hdr...))
		if got.status >= 500 {
			t.Fatalf("status %d", got.status)
		}
		refReq, inv := netHTTPEquivalent(request(method, "/", hdr...), size, DefaultMaxRanges)
		want := expectFromNetHTTP(record(ref, refReq), inv, size)
		if d := diffResponses(got, want); d != "" {
			t.Fatalf("%s %q: differs from net/http:\n%s", method, hdr, d)
		}
		if got.status == 206 && method != "HEAD" && strings.HasPrefix(got.header.Get("Content-Type"), "multipart/") {
			checkMultipart(t, got, content, "text/plain; charset=utf-8")
		}
	})
}
