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

// WithSendTimeout cuts off a client that stops reading a file, as nginx's
// send_timeout does: the response's write deadline is pushed d ahead
// whenever the client is seen to take more of the response (checked every
// d/4), so a download of any size at any steady rate goes on, while one that
// takes nothing for d is cut off within 1.25 d: the pending write fails with
// an error matching os.ErrDeadlineExceeded, the connection is closed, and a
// fastpath Logger records the response as send_timeout.
// http.Server.WriteTimeout cannot do this for downloads: it caps a
// response's total time.
//
// The client's progress is, on Linux, the bytes its TCP has acknowledged
// (tcpi_bytes_acked from getsockopt TCP_INFO), read from the connection's
// descriptor, which a handler can reach when the server accepts through
// middleware.Listener. A reader's kernel acknowledges data as it reopens its
// receive window, in steps of up to about half its receive buffer or one
// segment; with Linux's default buffers on loopback, where a segment is
// 64 KiB, a steady 16 KiB/s reader is seen to move about every 4 s, on an
// Ethernet path every few KiB. So d should exceed (64 KiB / the slowest rate
// to keep); nginx's 60 s keeps readers down to about 1 KiB/s. Over TLS the
// measure is the same (it counts encrypted bytes); over HTTP/2 it is the
// connection's, so one busy stream keeps a stalled one alive.
//
// Where the connection cannot be measured on Linux (no middleware.Listener,
// a Unix socket, linux/386), progress is the file's offset instead, which
// moves only when the kernel frees about a third of the socket's send buffer
// (which autotunes up to 4 MB): there a reader slower than
// (send buffer / 3) / d is cut off as stalled, so use a long timeout, or
// middleware.Listener. On other systems WithSendTimeout does nothing: Go's
// sendfile there moves the file's offset only once a whole body is sent, so
// nothing shows progress, and a fixed deadline would cut off long downloads.
//
// A whole file of at most 16 KiB, asked for without Range, is not watched:
// it fits the socket's send buffer, so its writes hardly ever wait for the
// client, and it gets one deadline d ahead instead, which costs far less per
// request than the checks; only a reader slower than 16 KiB per d is cut off
// there that watching would keep.
//
// The timeout covers file bodies; other responses (directory listings,
// errors) need a write deadline of their own, such as one set when each
// request starts, which this one replaces while a file is sent. After the
// file, the deadline is left d ahead, so what net/http flushes once the
// handler returns is bounded too. Off by default; d <= 0 turns it off. A
// ResponseWriter that cannot take deadlines (such as
// httptest.ResponseRecorder) is served without one.
func WithSendTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.sendTimeout = d })
}
