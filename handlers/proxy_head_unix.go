//go:build unix

package handlers

import "syscall"

// peek copies into buf what the socket has received and not yet read,
// without consuming it, waiting until there is something; 0 means EOF. It
// waits in the runtime's poller, so the connection's deadlines apply.
func (pc *upConn) peek(buf []byte) (int, error) {
	rc, err := pc.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, perr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK)
			if perr != syscall.EINTR {
				return perr != syscall.EAGAIN
			}
		}
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// idleAndClean reports whether an idle connection is still open and the
// upstream has sent nothing on it: no EOF, no reset, no stray bytes (a body
// longer than its Content-Length).
func (pc *upConn) idleAndClean() bool {
	sc, ok := pc.conn.(syscall.Conn)
	if !ok {
		return true // nothing can be seen without reading
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var b [1]byte
	clean := false
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		clean = perr == syscall.EAGAIN
		return true
	})
	return err == nil && clean
}

// canPeek reports whether the connection offers its descriptor.
func (pc *upConn) canPeek() bool {
	_, ok := pc.conn.(syscall.Conn)
	return ok
}
