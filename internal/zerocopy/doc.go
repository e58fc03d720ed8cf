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
// the idle timeout, and the copy when there is no pipe) is told from the
// user's side in package github.com/fastpath-go/fastpath/proxy, "Pipes";
// [NoPipe] is the reason for a copy that the proxy records. Here, how:
//
// The budget is read once, at the first splice ([Budget]). A transfer's
// window (what one pair of splice calls moves) starts at 64 KiB and doubles
// after every turn in which the upstream filled it and the client took it
// without the loop waiting, up to the pool's share; the pipe's capacity
// follows the window and is shrunk when the share falls below it, at a turn
// of the loop, when the pipe is empty. The kernel's answer to every pipe2
// and F_SETPIPE_SZ is read back (F_GETPIPE_SZ), never assumed. Descriptors
// in use are estimated from below at every pipe taken: the kernel hands out
// the lowest free number, so the numbers of a new pipe (and of the
// transfer's sockets) bound the count beneath them; where closed
// descriptors left holes, the Conns open and the pipes held bound it
// instead. Idle pipes are closed by one timer (time.AfterFunc), which is
// set only while some are idle: no goroutine runs for an empty pool, and
// none of it waits for the garbage collector. [Pipes] and
// [WaitPipesClosed] show the pool to tests and to tools/cmd/proxybench.
package zerocopy
