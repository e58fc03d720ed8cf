//go:build unix

package proxy

import (
	"errors"
	"syscall"
)

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
// longer than its Content-Length). A connection without a descriptor to
// look at cannot be vouched for, so it is never reused.
func (pc *upConn) idleAndClean() bool {
	n, err := pc.peekNow()
	return n < 0 && err == nil
}

// sound reports whether the connection is still open with nothing failed on
// it: after a splice that failed, whether the failure was the client's
// socket's. An upstream's reset or timeout leaves its socket closed (a
// peek then reads EOF, the error having been reported to the splice).
func (pc *upConn) sound() bool {
	n, err := pc.peekNow()
	return n != 0 && err == nil
}

// pending reports whether bytes have arrived on the connection that are
// not read yet.
func (pc *upConn) pending() bool {
	n, err := pc.peekNow()
	return n > 0 && err == nil
}

// peekNow looks, without waiting, at whether the socket has something to
// read: -1 for nothing yet, 0 for EOF, 1 for bytes; an error when the
// socket failed or offers no descriptor.
func (pc *upConn) peekNow() (int, error) {
	sc, ok := pc.conn.(syscall.Conn)
	if !ok {
		return 0, errNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var b [1]byte
	n, perr := 0, error(nil)
	// Control, not Read: the reader of the response may be waiting in
	// Read (holding the descriptor's read lock) while the request body's
	// writer asks; a peek that does not wait needs no lock.
	err = rc.Control(func(fd uintptr) {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if perr == syscall.EAGAIN {
			n, perr = -1, nil
		}
	})
	if err == nil {
		err = perr
	}
	return n, err
}

var errNoDescriptor = errors.New("fastpath/proxy: the upstream connection offers no descriptor")

// canPeek reports whether the connection offers its descriptor.
func (pc *upConn) canPeek() bool {
	_, ok := pc.conn.(syscall.Conn)
	return ok
}
