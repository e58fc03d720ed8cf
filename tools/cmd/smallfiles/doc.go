// Command smallfiles measures how many small-file requests a second each
// stack serves, from nginx to the example file server as shipped, and prints
// the README's table:
//
//	go run ./tools/cmd/smallfiles [-rounds 5] [-duration 5s] [-size 4096]
//
// Run it from the repository root (it builds ./examples/fileserver). In one
// run it starts, side by side, servers of the same file from a temporary
// directory:
//
//   - nginx (one worker, sendfile on, access_log off), when installed;
//   - a bare http.FileServer(http.Dir(dir));
//   - handlers.FileServer alone;
//   - handlers.FileServer under Tracing, Metrics and Logger with no-op
//     providers (a slog logger discarding its records), served through
//     middleware.Listener;
//   - examples/fileserver as shipped, with its defaults: SDK providers, the
//     Prometheus exporter, chi with its RequestID, and JSON request logs on
//     its standard output, which goes to a file in the temporary directory
//     (as with `fileserver > access.log`).
//
// Every server runs on CPU 0 (Go servers with GOMAXPROCS=1, nginx with one
// worker) and is driven by `wrk -t1 -c32 -d<duration>` on CPU 1. The stacks
// are measured in interleaved rounds, each round starting with the next
// stack, so a machine that slows down mid-run slows all of them. The table
// shows each stack's median req/s and the median, over the rounds, of its
// ratio to the bare http.FileServer of the same round; then the same for the
// server's CPU time (the run time of its threads, from /proc) per request
// wrk counted. On a machine busy with other work, req/s measures the share
// of CPU 0 each server got as much as its cost; CPU per request is the
// steadier figure.
//
// It builds on Linux only: it pins processes to CPUs. Without wrk it cannot
// measure and says so (.ci/install-tools bench installs it); without nginx
// that row is skipped.
package main
