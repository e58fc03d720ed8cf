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
type Source struct {
	Conn net.Conn
	N    int64 // bytes still to move
	Err  error // the first error reading Conn; nil at a clean end or EOF
}

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
