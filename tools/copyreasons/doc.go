// Package copyreasons proves, over real loopback servers, that fastpath says
// why a response body that could have gone zero-copy was copied (issue 21's
// "Done means"): for each middleware.CopyReason a file server can meet, a
// stack that causes it, and a healthy stack that gives none.
//
// Each case runs the whole stack (chi, Tracing, Metrics and Logger with the
// OpenTelemetry SDK, the peers under test, a file handler) on a server whose
// listener is middleware.Listener, and checks exact values in all three
// places the reason is recorded: the log record's
// fastpath.response.copy_reason and fastpath.response.copy_wrapper (absent
// when there is none), the same two on the server span, and the one point of
// fastpath.server.response.copied.size with its reason attribute, whose sum
// is the body less what sendfile sent less the 512 bytes net/http writes
// itself (no point at all for the healthy stack and for small_body, which is
// not a loss).
//
// Then each case's server runs again in a child process under
// strace -f -e trace=sendfile, and the sendfile(2) return values strace saw
// must add up to the fastpath.response.sendfile.size the child logged: zero
// wherever a reason claims the body was copied, the body less 512 for the
// healthy stack. Without strace (or where ptrace is refused) that half skips
// saying why, and fails when CI is set.
//
// The package is tests only. It lives in the tools module because its peers
// (gorilla/handlers) are no dependency of the library module:
//
//	cd tools && go test -race ./copyreasons/
package copyreasons
