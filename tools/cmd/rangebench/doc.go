// Command rangebench measures what serving multi-range requests costs the
// server, in system calls and CPU time, for net/http's http.ServeContent,
// fastpath's handlers.FileServer (served through middleware.Listener) and
// nginx with sendfile:
//
//	.ci/install-tools bench   # nginx-light, when missing
//	go run ./tools/cmd/rangebench -ranges 8 -part-size 16777216 -requests 4 -rounds 5 -strace-rounds 1 -strace-requests 4
//
// Each server runs as its own process pinned to CPU 0 (the Go stacks are
// this command re-executed with -child; nginx runs as one process in the
// foreground, access log off), serving a file of random bytes (256 MiB by
// default) from a warm page cache; this process, the client, runs on CPU 1.
// Every request is a GET with a Range header of evenly spaced ranges, and
// every 206 multipart/byteranges answer is parsed with mime/multipart and
// each part compared, byte for byte, with the file. Two cases are measured:
// -ranges parts of -part-size bytes, -requests times per round (8 of
// 16 MiB, 4 times, by default), and -small-ranges parts of -small-part-size
// bytes, -small-requests times per round (64 of 64 KiB, 128 times; 0 leaves
// the case out).
//
// CPU time is the server process's, over the requests of a round (the
// kernel's run time of its threads, from /proc/PID/task/*/schedstat, which
// getrusage's user plus system time adds up to); rounds are interleaved,
// each starting with the next server, and the median and quartiles are
// reported per GiB of part bodies. System calls come from separate runs
// under strace -f: a traced run of -strace-requests requests (4, or a
// round's if fewer), minus a traced run of the same server that only
// starts, answers the one-byte warm-up request every run begins with and
// stops, so start-up and connection set-up are not counted; they are shown
// per request, from the median of -strace-rounds such pairs. A server whose
// program is missing is skipped, saying so.
//
// It builds on Linux only: it counts sendfile(2) under strace and pins the
// processes to CPUs.
package main
