// Command tlsbench measures what serving a large file over HTTPS costs the
// server, in CPU time per GiB and in system calls, for net/http with
// crypto/tls, fastpath with kernel TLS (ktls.NewListener), and nginx with
// OpenSSL's kernel TLS, on this machine's kernel and in a QEMU guest
// booting Debian's kernel, which has the tls module most CI machines lack:
//
//	.ci/install-tools bench   # nginx-light, when missing; strace and QEMU come without bench
//	go run ./tools/cmd/tlsbench                                  # a smoke test: 64 MiB, several minutes
//	go run ./tools/cmd/tlsbench -size 268435456 -rounds 3        # the README's figures, about 20 minutes
//
// Flags: -where local,guest (where to run, comma separated), -size (bytes),
// -downloads (per round, 1), -rounds (3), -strace-rounds (1; 0 counts no
// system calls), -guest-memory (MiB, 2048), -guest-timeout (60m), -v
// (every round's figures and every traced call).
//
// The stacks, each a process of its own serving one file by
// http.ServeContent (nginx: from its root):
//
//   - net/http + crypto/tls: an http.Server on tls.NewListener; every byte
//     is read into the process and encrypted there.
//   - fastpath + ktls: chi with Tracing, Metrics and Logger (OpenTelemetry
//     SDK providers, every span sampled, logs as JSON to nowhere), on
//     ktls.NewListener(middleware.Listener(ln), config): the kernel
//     encrypts and net/http sends the file by sendfile(2).
//   - nginx + OpenSSL kTLS: nginx as one process, sendfile on, TLS 1.3 and
//     "ssl_conf_command Options KTLS": OpenSSL hands the session to the
//     kernel and nginx sends by SSL_sendfile, that is sendfile(2).
//
// A run writes the file (64 MiB by default; bytes whose value is their
// offset times 7) and a self-signed ECDSA certificate, and measures in
// rounds: each round starts every stack in turn, starting with the next
// one each round, pinned to CPU 0 (this process, the client, is on CPU 1),
// sends a one-byte request over a new TLS 1.3 connection so that the
// handshake is not measured, then downloads the file -downloads times on
// that connection, checking every byte. The server's CPU time over the
// downloads (the run time of its threads, /proc/PID/task/*/schedstat,
// which getrusage's user plus system time adds up to) gives the median and
// quartiles per GiB; "vs crypto/tls" is the median of each round's ratio.
// System calls come from strace -f: a traced run of the downloads minus a
// traced run that only starts, answers the one-byte request and stops, per
// download (a call or two of shutting down may fall on either side, so a
// small count can be off by one). While the connection is still open, /proc/net/tls_stat's
// TlsCurrTxSw and TlsCurrRxSw show whether the server's socket is a kernel
// TLS socket, sending and receiving. The Go servers also report how each
// request's connection was encrypted (ktls.FromContext) and what fastpath
// recorded (http.server.response.body.size and
// fastpath.server.response.sendfile.size).
//
// -where local runs on this machine's kernel. The stacks with kernel TLS
// run only where the kernel has it (ktls.Available); elsewhere they are
// skipped and the table says why. -where guest boots Debian's kernel under
// QEMU with internal/vmtest (the kernel package .ci/install-tools fetches,
// the tls module and its crypto loaded) and runs this program there
// (-where local -json), with strace and nginx copied from this machine
// with their libraries; the guest's own loopback carries every download.
// The guest's CPU is emulated (QEMU's TCG, -cpu max), so its figures
// compare the rows of one run and say nothing of a real CPU's speed; load
// on the host slows the emulation, so the host's load average is printed.
// A guest that cannot boot here (QEMU or the kernel package missing) is
// reported skipped, with the reason. The guest prints its results once its
// CPU rounds are done and again at the end, so a guest that runs out of
// -guest-timeout while counting system calls still reports its CPU
// figures, with the system calls not counted.
//
// Under emulation a 256 MiB download costs the crypto/tls server one to two
// minutes of CPU, and tracing it with strace about 7 minutes (on a 2-core
// EPYC VM under load), hence the smaller default size.
//
// It builds on Linux only: it reads /proc, pins processes to CPUs and
// counts system calls with strace.
package main
