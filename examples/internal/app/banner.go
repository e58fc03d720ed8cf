package app

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/fastpath-go/fastpath/ktls"
)

// sniffLen is how many bytes of a body net/http writes itself, with
// write(2), before it hands the rest of a file to sendfile(2).
const sniffLen = 512

// banner prints where the server listens and a download to try, whose log
// line shows sendfile at work. File names come from the served directory,
// which anyone may have written to: they are escaped into the URL and the
// URL is shell-quoted, so a file named $(touch x) is printed as a command
// that fetches it and runs nothing.
//
// base is the server's URL ("http://127.0.0.1:8080"); curlOpts are options
// the suggested curl needs (a --cacert for a self-signed certificate).
func banner(w io.Writer, base, metricsURL, root string, listing bool, curlOpts string) {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	f := sampleFile(root)
	fmt.Fprintf(w, "fastpath: serving %s on %s (-addr picks another address)\n", abs, base)
	switch {
	case listing:
		fmt.Fprintf(w, "  files:   %s/files/\n", base)
	case f.name != "":
		// Without -list, /files/ itself answers 404: link a file.
		fmt.Fprintf(w, "  files:   %s/files/%s (directory listings are off; -list turns them on)\n", base, url.PathEscape(f.name))
	default:
		fmt.Fprintf(w, "  files:   %s/files/NAME (the directory has no file to show; -list turns listings on)\n", base)
	}
	fmt.Fprintf(w, "  metrics: %s\n", metricsURL)
	fmt.Fprintf(w, "  health:  %s/healthz\n", base)
	name := cmp.Or(f.name, "FILE")
	curl := "curl " + curlOpts + "-o /dev/null -w '%{http_code} %{size_download}\\n' " + shellQuote(base+"/files/"+url.PathEscape(name))
	if f.size > sniffLen {
		fmt.Fprintf(w, "try a download; its log line shows fastpath.response.sendfile.size %d, all but the first %d bytes, which net/http writes itself:\n  %s\n",
			f.size-sniffLen, sniffLen, curl)
	} else {
		fmt.Fprintf(w, "try a download of a file larger than %d bytes (net/http writes the first %d bytes of a body itself, so a smaller one shows fastpath.response.sendfile.size 0):\n  %s\n",
			sniffLen, sniffLen, curl)
	}
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special but the single quote itself, which is closed, escaped and
// reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// file is a file the banner suggests.
type file struct {
	name string
	size int64
}

// sampleFile returns a regular file in dir for the banner to suggest: the
// smallest larger than 512 bytes, which is quick to download and shows
// sendfile at work, else the first in name order; hidden files and names
// the file server refuses are left out.
func sampleFile(dir string) file {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return file{}
	}
	var files []file
	for _, e := range entries {
		// The file server refuses backslashes and control characters.
		odd := strings.ContainsFunc(e.Name(), func(r rune) bool { return r == '\\' || unicode.IsControl(r) })
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || odd {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode()&fs.ModeType == 0 {
			files = append(files, file{e.Name(), fi.Size()})
		}
	}
	if len(files) == 0 {
		return file{}
	}
	// Name order (ReadDir's); among files that show sendfile, size order.
	best := files[0]
	for _, f := range files {
		if f.size > sniffLen && (best.size <= sniffLen || f.size < best.size) {
			best = f
		}
	}
	return best
}

// ktlsLine says, for the banner of an HTTPS server, whether this kernel takes
// TLS sessions (kernel TLS), so downloads go by sendfile, or why not.
func ktlsLine() string {
	switch r := ktls.Available(); r {
	case ktls.InKernel:
		return "kernel TLS: on; HTTP/1.1 downloads go by sendfile, encrypted by the kernel (HTTP/2 stays in crypto/tls)"
	case ktls.FallbackNoULP:
		return "kernel TLS: off (" + string(r) + ": this kernel has no tls module loaded; sudo modprobe tls); HTTPS is served by crypto/tls, without sendfile"
	default:
		return "kernel TLS: off (" + string(r) + ", see package ktls); HTTPS is served by crypto/tls, without sendfile"
	}
}
