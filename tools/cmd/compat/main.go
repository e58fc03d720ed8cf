// Command compat measures which popular net/http middlewares keep a file
// download on the kernel's zero-copy path, and writes the result as a
// Markdown table (docs/compat.md).
//
// Each row of the table puts one middleware, alone, between fastpath's stack
// (Tracing, Metrics and Logger, served through middleware.Listener) and a
// handler that serves a 64 MiB file with fastpath's handlers.ServeContent
// (one control row uses http.ServeContent, a handler fastpath does not know),
// on a loopback server. A client downloads the file in full and with a single
// Range, and the row records, per request:
//
//   - whether the body still went by sendfile(2), from the count the
//     connection itself keeps (internal/zerocopy), and the zero-copy share;
//   - whether the body size fastpath's Logger recorded equals the bytes the
//     client received, and the status fastpath recorded;
//   - for middlewares that report a response size themselves, the size they
//     reported against the truth;
//   - when the fast path is lost, why: the copy reason and wrapper fastpath's
//     Logger recorded (middleware.CopyReasonKey, middleware.CopyWrapperKey),
//     then what this command found that they do not say: the writer that
//     hides io.ReaderFrom, the ReadFrom method that copies instead of
//     passing the file down, or the header change that forced a compressed
//     or chunked body.
//
// Module versions come from the binary's build information, never from text
// typed by hand. The table holds no timings, so it is the same on every run
// of the same code; the tests of this package regenerate it and fail when
// the committed file no longer matches.
//
// Usage, from the module root:
//
//	go run ./tools/cmd/compat              # writes docs/compat.md
//	go run ./tools/cmd/compat -o other.md  # writes elsewhere
//	go run ./tools/cmd/compat -check       # compares, exit status 1 on a difference
//
// The command serves on 127.0.0.1 only and needs Linux, where sendfile(2) is
// what net/http uses.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	out := flag.String("o", "docs/compat.md", "the Markdown file to write, or to compare with -check")
	check := flag.Bool("check", false, "compare the generated table with the file instead of writing it")
	quiet := flag.Bool("q", false, "do not print progress to standard error")
	flag.Parse()

	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	doc, err := generate(ctx, defaultFileSize, progress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(1)
	}
	if *check {
		old, err := os.ReadFile(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compat:", err)
			os.Exit(1)
		}
		if d := diff(string(old), doc); d != "" {
			fmt.Fprintf(os.Stderr, "compat: %s is out of date (regenerate with go run ./tools/cmd/compat):\n%s", *out, d)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "compat: %s is up to date (%.1fs)\n", *out, time.Since(start).Seconds())
		return
	}
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "compat: wrote %s (%.1fs)\n", *out, time.Since(start).Seconds())
}
