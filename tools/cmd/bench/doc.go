// Command bench measures what serving a large file costs the server, for
// net/http alone, a naive byte-counting ResponseWriter wrapper, otelhttp, and
// the full fastpath stack served through middleware.Listener:
//
//	go run ./tools/cmd/bench
//
// Each stack runs in a child process on loopback. The server's CPU time (user
// plus system, from getrusage in the child) is measured over several
// interleaved rounds of downloads and the median is reported per GiB served;
// the I/O system calls (read, write, writev, sendfile, splice, ...) are
// counted in a separate run of each stack under strace -f. Both are shown as
// ratios to net/http alone, with the response bytes each stack reported.
//
// It builds on Linux only: it counts sendfile(2) under strace and pins the
// processes to CPUs.
package main
