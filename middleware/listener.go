package middleware

import (
	"net"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
)

// Listener returns a listener whose connections let fastpath measure, per
// request, the bytes the kernel sent with sendfile(2) and moved with
// splice(2). Serve with it:
//
//	ln, err := net.Listen("tcp", addr)
//	...
//	srv.Serve(middleware.Listener(ln))
//
// The count is measured at the connection, below every ResponseWriter
// wrapper, so a wrapper anywhere in the chain that hides io.ReaderFrom shows
// up as zero rather than being assumed away. Logger, Metrics and Tracing
// report them as fastpath.response.sendfile.size and
// fastpath.response.splice.size (the bytes of a body proxy.ReverseProxy
// spliced from its upstream); without Listener they leave them out rather
// than guess.
//
// The connections keep what net/http and users rely on: io.ReaderFrom (so
// sendfile and splice still happen), io.WriterTo, CloseRead, CloseWrite,
// deadlines, SyscallConn, and SetKeepAlive, SetKeepAlivePeriod, SetNoDelay
// and SetLinger. A hijacked connection is therefore not a *net.TCPConn; its
// NetConn method returns the one it wraps, for anything else. LocalAddr
// returns a copy of the accepted connection's address, which is how a
// request finds its connection.
func Listener(ln net.Listener) net.Listener {
	return zerocopy.Listener{Listener: ln}
}
