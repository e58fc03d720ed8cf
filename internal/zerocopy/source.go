package zerocopy

import (
	"io"
	"net"
)

// Source is a socket body for Conn.ReadFrom to move by splice(2): at most N
// bytes from Conn, which is a *net.TCPConn or a stream *net.UnixConn.
//
// A reverse proxy hands one to the client's ResponseWriter.ReadFrom. When the
// writers between keep io.ReaderFrom and the client connection is a Conn,
// Conn.ReadFrom splices from it, socket to pipe to socket, and counts what
// reached the client; otherwise whoever copies reads it through Read.
//
// Either way, a failure to read Conn is not reported as an error of the
// copy: Read and ReadFrom end as at EOF and leave the error in Err, so the
// writers above (which record a failed ReadFrom as a failed write to the
// client) never blame the client for its upstream. The owner compares N
// with zero and reads Err to learn whether the body ended early and why.
// ReadFrom's own error is always the client side's: the write to the
// client's socket failed (the client left, a write deadline passed, the
// server closed the connection).
//
// When Conn.ReadFrom has no pipe to splice through, it copies, and NoPipe
// says why (see "Pipes" in the package documentation).
type Source struct {
	Conn   net.Conn
	N      int64  // bytes still to move
	Err    error  // the first error reading Conn; nil at a clean end or EOF
	NoPipe NoPipe // why ReadFrom copied (some of) the body for want of a pipe; 0 when it did not
}

// NoPipe is why Conn.ReadFrom copied a Source through user space, from the
// start or from some point on, for want of a pipe to splice through.
type NoPipe uint8

// The reasons for a copy for want of a pipe.
const (
	// NoPipeSmall: the kernel made a pipe smaller than 32 KiB, which
	// would take more system calls than the copy: the user's
	// fs.pipe-user-pages-soft is spent (by this process or another of the
	// same user).
	NoPipeSmall NoPipe = iota + 1
	// NoPipeBudget: the pipes in use hold the process's share of the
	// user's pipe pages.
	NoPipeBudget
	// NoPipeDescriptors: the descriptors in use are past half of
	// RLIMIT_NOFILE, which is kept for connections.
	NoPipeDescriptors
	// NoPipeFailed: pipe2(2) failed (EMFILE, ENFILE, ENOMEM).
	NoPipeFailed

	noPipeCount
)

var _ io.Reader = (*Source)(nil)

// Read reads at most N bytes from Conn. It returns io.EOF once N bytes have
// been read, at Conn's EOF, and after a read error, which it keeps in Err.
func (s *Source) Read(p []byte) (int, error) {
	if s.N <= 0 || s.Err != nil {
		return 0, io.EOF
	}
	if int64(len(p)) > s.N {
		p = p[:s.N]
	}
	n, err := s.Conn.Read(p)
	s.N -= int64(n)
	switch {
	case err == io.EOF:
		return n, io.EOF
	case err != nil:
		s.Err = err
		return n, io.EOF
	}
	return n, nil
}
