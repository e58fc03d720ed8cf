// Package zerocopy counts, per connection, the bytes the kernel sent with
// sendfile(2) and splice(2), and splices a reverse proxy's bodies through
// pipes it keeps within what the kernel allows the process.
//
// net/http hands a file body to the connection's ReadFrom (see
// net/http.(*response).ReadFrom); *net.TCPConn.ReadFrom then calls sendfile
// when the source is an *os.File, or an *io.LimitedReader around one, and
// otherwise copies through a user-space buffer. Conn sits exactly there, so it
// counts what sendfile sent rather than guessing from types: a writer that
// hides io.ReaderFrom anywhere between a handler and net/http shows up as zero.
//
// A socket body a reverse proxy hands over as a *Source is moved by
// splice(2), socket to pipe to socket, and counted the same way (see
// splice_linux.go for why Conn runs that loop itself).
//
// # Pipes
//
// What happens to the pipes (their sizes, the page and descriptor budget,
// the idle timeout, and the copy when there is none) is told from the
// user's side once, in package github.com/fastpath-go/fastpath/proxy,
// "Pipes"; [NoPipe] is the reason for a copy that the proxy records. Here,
// how it is done.
//
// The budget is read once, at the first splice ([Budget]). Every size the
// kernel gives, to pipe2 and to F_SETPIPE_SZ, is read back (F_GETPIPE_SZ,
// or F_SETPIPE_SZ's own answer). A transfer's window, what a pair of
// splice calls moves, doubles after a turn that filled three quarters of it
// (a pipe fills by slots, one per piece of the socket's buffers, which
// need not be whole pages) without the pump waiting more than once and
// with nothing left unsent in the client's socket (SIOCOUTQNSD); it halves
// after a turn that waited more. The pipe's capacity follows the window,
// grows only while the pool holds at most three quarters of the page
// budget (the last quarter is for new pipes), and shrinks at a turn of the
// loop, when the pipe is empty, when the window or the share is below it.
//
// A transfer holds its lock only inside a splice call, so the pool can
// take its pipe (shed) whenever it waits: the bytes in the pipe, at most a
// window, move to a buffer the transfer writes once the client takes them.
// The descriptors in use are estimated from below: the kernel hands out
// the lowest free number, so a new pipe's numbers (and a transfer's
// sockets') bound the count beneath them; where closed descriptors left
// holes, the Conns open, the Sources being moved and the pipes held bound
// it instead. Reading /proc/self/fd would be exact but costs about 1 ms
// per 2000 descriptors.
//
// Idle pipes are closed by one timer (time.AfterFunc), set only while some
// are idle: no goroutine runs for an empty pool, and none of it waits for
// the garbage collector. [Pipes] and [WaitPipesClosed] show the pool to
// tests and to tools/cmd/proxybench.
package zerocopy
