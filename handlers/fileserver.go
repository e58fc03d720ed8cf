package handlers

import (
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FileServer returns a handler that serves GET and HEAD requests with the
// files under root, choosing the file by r.URL.Path, so it works under
// http.StripPrefix and in routers such as chi:
//
//	mux.Handle("/static/", http.StripPrefix("/static/", handlers.FileServer(root)))
//
// Regular files are served with http.ServeContent's semantics (ranges,
// preconditions, HEAD), a strong ETag derived from the file's size and
// modification time, and the body on the sendfile(2) path; see the package
// documentation for multi-range requests, precompressed sidecar files and
// what answers 404. Other methods get 405 with "Allow: GET, HEAD".
//
// The handler never closes root, which must stay open while it serves. It
// panics if root is nil or an option is invalid.
func FileServer(root *os.Root, opts ...Option) http.Handler {
	if root == nil {
		panic("fastpath/handlers: FileServer: nil root")
	}
	return &fileServer{root: root, cfg: newConfig(opts)}
}

type fileServer struct {
	root *os.Root
	cfg  config
}

// notFoundBody is the whole body of every 404: the same text as net/http's,
// and never anything derived from the file system.
const notFoundBody = "404 page not found"

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, dir, ok := resolvePath(r.URL.Path, s.cfg.dotfiles)
	if !ok {
		replyStatus(w, http.StatusNotFound)
		return
	}
	f, fi, status := s.open(name)
	if status != 0 {
		replyStatus(w, status)
		return
	}
	defer f.Close()

	switch {
	case fi.Mode().IsRegular():
		if dir {
			// "/file.txt/": net/http redirects to "../file.txt"; a file
			// is not a directory, so this is simply not found.
			replyStatus(w, http.StatusNotFound)
			return
		}
		s.serveRegular(w, r, name, f, fi)
	case fi.IsDir() && (s.cfg.index || s.cfg.listing):
		if !dir {
			localRedirect(w, r, slashRedirect(r, name))
			return
		}
		if s.cfg.index {
			index := filepath.Join(name, "index.html")
			if g, gi, status := s.open(index); status == 0 {
				defer g.Close()
				if gi.Mode().IsRegular() {
					s.serveRegular(w, r, index, g, gi)
					return
				}
			}
		}
		if s.cfg.listing {
			s.serveListing(w, r, name, f, fi)
			return
		}
		replyStatus(w, http.StatusNotFound)
	default:
		// A directory with neither index nor listing, a device, a FIFO,
		// a socket: nothing to serve.
		replyStatus(w, http.StatusNotFound)
	}
}

// resolvePath maps a request path to a name relative to the root, in the
// operating system's syntax, and reports whether the path ended in a slash.
// It refuses (ok false) anything that is not a plain downward path: empty,
// "." and ".." elements (so "//", "/./" and "/../"), backslashes, NUL bytes,
// names the operating system reserves (see filepath.Localize) and, unless
// dotfiles, elements starting with a dot. os.Root then refuses symbolic links
// that lead out of the root.
func resolvePath(p string, dotfiles bool) (name string, dir bool, ok bool) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return ".", true, true
	}
	if strings.HasSuffix(p, "/") {
		dir = true
		p = p[:len(p)-1]
	}
	if !fs.ValidPath(p) || p == "." || strings.ContainsAny(p, "\\\x00") {
		return "", false, false
	}
	if !dotfiles && (p[0] == '.' || strings.Contains(p, "/.")) {
		return "", false, false
	}
	name, err := filepath.Localize(p)
	if err != nil {
		return "", false, false
	}
	return name, dir, true
}

// open opens name under the root. status is 0 on success, else the status
// to answer with: 404 for every answer about the file (missing, refused by
// the root, not permitted, too long a name...), 500 for resource errors.
func (s *fileServer) open(name string) (*os.File, fs.FileInfo, int) {
	f, err := s.root.OpenFile(name, openFlags, 0)
	if err != nil {
		if isTransient(err) {
			return nil, nil, http.StatusInternalServerError
		}
		return nil, nil, http.StatusNotFound
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, http.StatusInternalServerError
	}
	return f, fi, 0
}

// replyStatus answers with a fixed plain-text body for status.
func replyStatus(w http.ResponseWriter, status int) {
	if status == http.StatusNotFound {
		http.Error(w, notFoundBody, status)
		return
	}
	http.Error(w, "500 internal server error", http.StatusInternalServerError)
}

// slashRedirect returns the relative target that adds a trailing slash to
// the URL of the directory name.
//
// The target replaces the request path's last segment, as sent, with the
// directory elements that segment decodes to, each escaped: "./b/" for
// ".../b", and "./a/b/" for ".../a%2Fb", which names the directory a/b that
// was opened (not ".../b/", which a relative "./b/" would reach from
// ".../a%2Fb"). "./" keeps a name such as "a:b" from reading as a URL
// scheme, and every element is one resolvePath accepted, so the target is
// always below the current URL, never another host.
func slashRedirect(r *http.Request, name string) string {
	elems := strings.Split(filepath.ToSlash(name), "/")
	esc := r.URL.EscapedPath()
	last := esc[strings.LastIndexByte(esc, '/')+1:]
	if dec, err := url.PathUnescape(last); err == nil && dec != "" {
		if n := strings.Count(dec, "/") + 1; n <= len(elems) && strings.Join(elems[len(elems)-n:], "/") == dec {
			elems = elems[len(elems)-n:]
		} else {
			elems = elems[len(elems)-1:]
		}
	} else {
		elems = elems[len(elems)-1:]
	}
	var b strings.Builder
	b.WriteString("./")
	for _, e := range elems {
		b.WriteString(url.PathEscape(e))
		b.WriteByte('/')
	}
	return b.String()
}

// localRedirect answers 301 with a relative target, keeping the query.
func localRedirect(w http.ResponseWriter, r *http.Request, target string) {
	if q := r.URL.RawQuery; q != "" {
		target += "?" + q
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusMovedPermanently)
}

// serveRegular serves f, the regular file at name, or a precompressed
// sidecar of it that the client accepts.
func (s *fileServer) serveRegular(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi fs.FileInfo) {
	h := w.Header()
	if s.cfg.cacheControl != "" {
		h.Set("Cache-Control", s.cfg.cacheControl)
	}
	if s.cfg.attachments {
		SetAttachment(h, filepath.Base(name))
	}
	// f and any sidecar are fresh from open: at offset 0.
	c := &content{f: f, size: fi.Size(), modtime: fi.ModTime(), name: name, typeOf: f, maxRanges: s.cfg.maxRanges, atStart: true}
	if len(s.cfg.codings) > 0 {
		addVary(h, "Accept-Encoding")
		order, n := preferredCodings(r, s.cfg.codings)
		for _, i := range order[:n] {
			cd := s.cfg.codings[i]
			sf, sfi, status := s.open(name + cd.ext)
			if status != 0 {
				continue
			}
			defer sf.Close()
			if !sfi.Mode().IsRegular() {
				continue
			}
			// The sidecar's own size and time make its validators; the
			// original, never the compressed bytes, gives the type.
			c.f, c.size, c.modtime, c.encoding = sf, sfi.Size(), sfi.ModTime(), cd.name
			h.Set("Etag", makeETag(sfi, cd.name))
			s.send(w, r, c)
			return
		}
	}
	h.Set("Etag", makeETag(fi, ""))
	s.send(w, r, c)
}

// send serves c, cutting the client off when WithSendTimeout asks for it
// and the client stops taking the bytes.
func (s *fileServer) send(w http.ResponseWriter, r *http.Request, c *content) {
	if s.cfg.sendTimeout > 0 {
		defer watchSend(w, r, c.f, c.size, s.cfg.sendTimeout)()
	}
	serveFile(w, r, c)
}

// serveListing answers with an HTML list of the directory f (at dir below
// the root), leaving out entries a request could not reach. The listing has
// a modification time but no entity tag, so of the preconditions only the
// date ones and "*" can fail.
func (s *fileServer) serveListing(w http.ResponseWriter, r *http.Request, dir string, f *os.File, fi fs.FileInfo) {
	switch (validators{modtime: fi.ModTime()}).evalPreconditions(r) {
	case http.StatusNotModified:
		writeNotModified(w)
		return
	case http.StatusPreconditionFailed:
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })

	var b strings.Builder
	b.WriteString("<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n")
	for _, e := range entries {
		name, ok := s.listedName(dir, e)
		if !ok {
			continue
		}
		// url.URL escapes '?', '#', '%', spaces, quotes, angle brackets
		// and non-ASCII, and prefixes "./" when the first element has a
		// colon; html.EscapeString then makes '&' and '\'' safe too.
		href := (&url.URL{Path: name}).String()
		b.WriteString("<a href=\"")
		b.WriteString(html.EscapeString(href))
		b.WriteString("\">")
		b.WriteString(html.EscapeString(name))
		b.WriteString("</a>\n")
	}
	b.WriteString("</pre>\n")

	setLastModified(w.Header(), fi.ModTime())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

// listedName returns the name under which the directory listing of dir
// shows e ("name", or "name/" for a directory), and false when a request for
// it would answer 404: a name resolvePath refuses, a FIFO, socket or device,
// or a symbolic link that leaves the root or leads to one of those. Links
// are followed through the root, as a request would be.
func (s *fileServer) listedName(dir string, e fs.DirEntry) (string, bool) {
	name := e.Name()
	if _, _, ok := resolvePath(name, s.cfg.dotfiles); !ok {
		return "", false
	}
	mode := e.Type()
	if mode&fs.ModeSymlink != 0 {
		fi, err := s.root.Stat(filepath.Join(dir, name))
		if err != nil {
			return "", false
		}
		mode = fi.Mode().Type()
	}
	switch {
	case mode.IsDir():
		return name + "/", true
	case mode.IsRegular():
		return name, true
	}
	return "", false
}
