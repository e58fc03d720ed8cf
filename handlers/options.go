package handlers

import (
	"fmt"
	"strings"
	"time"
)

// Option configures a FileServer. The zero configuration works: files only
// (no index pages, no listings, no dotfiles), precompressed br, zstd and
// gzip sidecars, at most DefaultMaxRanges ranges, no Cache-Control.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is the resolved set of a FileServer's options.
type config struct {
	index        bool
	listing      bool
	dotfiles     bool
	attachments  bool
	cacheControl string
	maxRanges    int
	codings      []coding
	sendTimeout  time.Duration
}

func newConfig(opts []Option) config {
	c := config{
		maxRanges: DefaultMaxRanges,
		codings:   knownCodings,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithIndex makes a request for a directory (with a trailing slash) serve
// the directory's index.html, and a request for a directory without the
// trailing slash redirect to add it. Off by default: directories answer 404.
func WithIndex() Option {
	return optionFunc(func(c *config) { c.index = true })
}

// WithDirectoryListing makes a request for a directory that has no index
// page (or when WithIndex is off) answer with an HTML list of its entries,
// sorted by name, with every name HTML-escaped and URL-escaped in its link.
// Entries a request would get 404 for (dotfiles unless WithDotfiles, names
// with a backslash, FIFOs, sockets, devices, symbolic links out of the
// root) are left out. A request for a directory without the
// trailing slash redirects to add it. Off by default.
func WithDirectoryListing() Option {
	return optionFunc(func(c *config) { c.listing = true })
}

// WithDotfiles lets requests reach files and directories whose names start
// with a dot (".well-known", ".env"). Off by default: a request with any
// path element starting with "." answers 404. The path elements "." and ".."
// are refused either way.
func WithDotfiles() Option {
	return optionFunc(func(c *config) { c.dotfiles = true })
}

// WithCacheControl sets the Cache-Control header of every response for a
// file (200, 206, 304 and 412), for example "public, max-age=3600".
// The empty string (the default) sends none.
func WithCacheControl(value string) Option {
	return optionFunc(func(c *config) { c.cacheControl = value })
}

// WithMaxRanges bounds the number of ranges in a multi-range request: a
// request for more than n satisfiable ranges gets the whole file with
// 200 OK, as RFC 9110, section 14.2 allows. The default is DefaultMaxRanges; a negative n
// removes the bound (net/http's behaviour). n == 0 panics: it reads as "no
// ranges" (nginx's max_ranges 0) and would mean the opposite, so say -1.
func WithMaxRanges(n int) Option {
	if n == 0 {
		panic("fastpath/handlers: WithMaxRanges(0): give a bound of at least 1, or -1 for none")
	}
	return optionFunc(func(c *config) { c.maxRanges = n })
}

// WithAttachments makes every file response carry a Content-Disposition:
// attachment header naming the file (see Attachment), so browsers download
// files instead of rendering them. Use it when serving files users uploaded:
// an uploaded HTML or SVG file rendered inline runs in your origin.
func WithAttachments() Option {
	return optionFunc(func(c *config) { c.attachments = true })
}

// WithEncodings sets which precompressed sidecar files FileServer looks for,
// in server preference order, among "br" (name.br), "zstd" (name.zst) and
// "gzip" (name.gz). The default is WithEncodings("br", "zstd", "gzip").
// WithEncodings() with no arguments turns precompressed serving off (and
// with it the Vary: Accept-Encoding header). It panics on an unknown or
// repeated coding name: that is a programming error.
func WithEncodings(encodings ...string) Option {
	codings := make([]coding, 0, len(encodings))
	for _, name := range encodings {
		i := -1
		for j, k := range knownCodings {
			if strings.EqualFold(name, k.name) {
				i = j
			}
		}
		if i < 0 {
			panic(fmt.Sprintf("fastpath/handlers: WithEncodings: unknown content coding %q (want br, zstd or gzip)", name))
		}
		for _, c := range codings {
			if c == knownCodings[i] {
				panic(fmt.Sprintf("fastpath/handlers: WithEncodings: content coding %q given twice", name))
			}
		}
		codings = append(codings, knownCodings[i])
	}
	return optionFunc(func(c *config) { c.codings = codings })
}

// WithSendTimeout cuts off a client that stops reading a file: the
// response's write deadline is kept d ahead for as long as the client takes
// more of the response, so a download of any size at a steady rate goes on,
// but one that takes nothing for d is cut off within 1.25 d (the pending
// write fails with an error matching os.ErrDeadlineExceeded, the connection
// is closed, and a fastpath Logger records the response as send_timeout). This
// is nginx's send_timeout; it is what http.Server.WriteTimeout cannot be
// for downloads, since that caps a response's total time.
//
// The client's progress is measured at its TCP connection (the bytes it
// acknowledged) when the server accepts through middleware.Listener on
// Linux, and otherwise on Linux by the file's offset, which is coarse: see
// the package documentation, "Slow clients", for what each sees and how
// large d should be. It covers file bodies, on Linux (elsewhere it does
// nothing); other responses (directory
// listings, errors) need a write deadline of their own, such as one set when
// each request starts, which this one replaces while a file is sent. After
// the file, the deadline is left d ahead, so what net/http flushes once the
// handler returns is bounded too. A whole file of at most 16 KiB (no
// Range), which fits the socket's send buffer, is not watched on Linux: it
// gets one deadline d ahead, which costs a small file far less than
// watching. Off by default; d <= 0 turns it off. A ResponseWriter that
// cannot take deadlines (such as httptest.ResponseRecorder) is served
// without one.
func WithSendTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.sendTimeout = d })
}
