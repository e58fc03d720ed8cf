package zerocopy

import (
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Why Conn splices a Source itself rather than handing it to the runtime:
// (*net.TCPConn).ReadFrom splices only from a concrete *net.TCPConn or
// *net.UnixConn (optionally inside an *io.LimitedReader), and when its first
// splice(2) is refused (EINVAL) or no pipe can be made, it silently copies
// through read(2) and write(2) on the same descriptors. Nothing outside the
// runtime can tell the two apart: a wrapper around the source would stop the
// splice altogether, which is the trick sendfile counting uses and cannot be
// used here. So Conn runs the splice loop on the two descriptors (through
// syscall.RawConn, so the runtime's poller, deadlines and locks apply as in
// its own loop) and counts the result of every pipe-to-socket splice(2): the
// bytes that reached the client socket, which is what strace shows as the
// splice calls writing to the client's descriptor. A refused first splice
// falls back to a copy that is counted as nothing. The loop also owns its
// pipes, which the runtime sizes to 1 MiB whatever the kernel allows and
// keeps until garbage collections (see "Pipes" in the package doc).

const (
	spliceMove     = 0x1    // SPLICE_F_MOVE (include/linux/splice.h)
	spliceNonblock = 0x2    // SPLICE_F_NONBLOCK: the pipe ends never block
	siocOutqNSD    = 0x894B // SIOCOUTQNSD (include/uapi/linux/sockios.h)
)

// transfer is one Source's pass through a pipe: the window is what a pair of
// splice calls moves at most, and the pipe's capacity follows it.
//
// mu is held for every splice call and every look at the pipe, so that the
// pool can take the pipe away (takeAway) whenever the transfer is not in a
// call: waiting for the upstream, or for a slow client to make room.
type transfer struct {
	pl      *pool
	mu      sync.Mutex
	p       *pipe  // nil once taken away
	pending []byte // the bytes that were in the pipe when it was taken away
	window  int
	full    bool // the last turn filled the window, and the client took it at once
	fixed   bool // the kernel refused to grow the pipe: stop asking
}

// turn sets the window for the next pair of calls, with left bytes to go,
// with mu held. The window doubles after a turn in which the upstream
// filled it and the client took it without the loop waiting more than once
// and with nothing left unsent in its socket, as between two fast sockets,
// up to the pool's share; it halves after a turn that waited more (see
// spliceFrom), so a slow client keeps a small pipe. A pipe larger than the
// share (more transfers than when it grew) is shrunk to the window, giving
// the pages back.
func (t *transfer) turn(left int64) {
	share := t.pl.share()
	if t.full && left > int64(t.window) {
		t.window *= 2
	}
	t.window = min(t.window, share)
	switch {
	case t.p.size < t.window && !t.fixed:
		t.fixed = t.pl.resize(t.p, t.window)
	case t.p.size > share:
		t.pl.resize(t.p, t.window)
	}
	t.window = min(t.window, t.p.size)
}

// stalled is called, with mu held, when the client has made the pump wait
// with bytes still in the pipe. While the pool is short of pages, the pipe
// of such a client is shrunk to startWindow as soon as what is left in it
// fits, so that slow clients hold small pipes and fast downloads get the
// pages.
func (t *transfer) stalled() {
	if t.p.size > startWindow && t.p.data <= startWindow && t.pl.short() {
		t.pl.resize(t.p, startWindow)
		t.window = min(t.window, t.p.size)
	}
}

// takeAway closes the transfer's pipe, with mu held, keeping the bytes in
// it in pending for the transfer to write (they are at most a window). It
// leaves a pipe it cannot empty (a read that fails) to the transfer.
func (t *transfer) takeAway() {
	if t.p == nil {
		return
	}
	if t.p.data > 0 {
		buf := make([]byte, t.p.data)
		got := 0
		for got < len(buf) {
			n, err := syscall.Read(t.p.r, buf[got:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				return
			}
			got += n
		}
		t.pending = buf
		t.p.data = 0
	}
	t.pl.drop(t.p)
	t.p = nil
}

// spliceFrom moves s to the connection with splice(2) through a pipe of pl.
// handled is false when the source or the connection offers no descriptor,
// the kernel refused the first splice, or no pipe could be had (s.NoPipe
// says why) at the start or later: the caller copies what is left of s.
func (c *Conn) spliceFrom(pl *pool, s *Source) (written int64, err error, handled bool) {
	srcConn, ok := s.Conn.(syscall.Conn)
	if !ok {
		return 0, nil, false
	}
	dstConn, ok := c.Conn.(syscall.Conn)
	if !ok {
		return 0, nil, false
	}
	src, err := srcConn.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	dst, err := dstConn.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	p, why := pl.get(descriptor(src), descriptor(dst))
	if p == nil {
		s.NoPipe = why
		pl.stats.noPipe[why].Add(1)
		return 0, nil, false
	}
	t := &transfer{pl: pl, p: p, window: min(startWindow, p.size)}
	pl.register(t)
	defer func() {
		t.mu.Lock()
		if t.p != nil {
			pl.put(t.p)
			t.p = nil
		}
		t.mu.Unlock()
		pl.unregister(t)
	}()
	// gone reports, with mu held, whether the pipe was taken away.
	gone := func() bool { return t.p == nil }
	first := true
	for s.N > 0 && s.Err == nil {
		if !first && pl.crowded(0) {
			pl.shed()
		}
		t.mu.Lock()
		if gone() {
			t.mu.Unlock()
			return c.givenUp(t, s, written)
		}
		if !first {
			t.turn(s.N) // the pipe is empty here
		}
		want := int(min(s.N, int64(t.window)))
		t.mu.Unlock()
		// Drain: socket to pipe. The pipe is empty here, so EAGAIN means
		// the socket has nothing to read yet.
		var (
			inPipe  int64
			serr    error
			stopped bool
		)
		rerr := src.Read(func(fd uintptr) bool {
			t.mu.Lock()
			defer t.mu.Unlock()
			if stopped = gone(); stopped {
				return true
			}
			for {
				inPipe, serr = syscall.Splice(int(fd), nil, t.p.w, nil, want, spliceMove|spliceNonblock)
				pl.countSplice(t.p, 0)
				if serr != syscall.EINTR {
					break
				}
			}
			t.p.data = int(max(inPipe, 0))
			return serr != syscall.EAGAIN
		})
		if stopped {
			return c.givenUp(t, s, written)
		}
		if first && rerr == nil && serr == syscall.EINVAL {
			return 0, nil, false // this socket type cannot be spliced
		}
		first = false
		switch {
		case rerr != nil:
			s.Err = rerr
		case serr != nil:
			s.Err = os.NewSyscallError("splice", serr)
		}
		if inPipe <= 0 {
			break // EOF, or the error just kept
		}
		s.N -= inPipe
		waits := 0
		// Pump: pipe to socket, until the pipe is empty.
		for {
			var n int64
			left := 0
			werr := dst.Write(func(fd uintptr) bool {
				t.mu.Lock()
				defer t.mu.Unlock()
				if stopped = gone(); stopped {
					return true
				}
				for {
					n, serr = syscall.Splice(t.p.r, nil, int(fd), nil, t.p.data, spliceMove|spliceNonblock)
					pl.countSplice(t.p, n)
					if serr != syscall.EINTR {
						break
					}
				}
				if n > 0 {
					t.p.data -= int(n)
					written += n
					c.splice.Add(n)
				}
				left = t.p.data
				if serr == syscall.EAGAIN {
					waits++
					t.stalled()
					if pl.onStall != nil {
						pl.onStall()
					}
					return false
				}
				return true
			})
			if stopped {
				return c.givenUp(t, s, written)
			}
			if werr != nil {
				return written, werr, true
			}
			if serr != nil && n <= 0 {
				return written, os.NewSyscallError("splice", serr), true
			}
			if left == 0 {
				break
			}
		}
		// A pipe fills by slots, one per piece of the socket's buffers,
		// which need not be whole pages: three quarters is full.
		full := 4*inPipe >= 3*int64(want) && waits <= 1
		if full && t.window < pl.b.maxSize && s.N > int64(t.window) {
			full = unsent(dst) == 0
		}
		t.mu.Lock()
		t.full = full
		if waits > 1 {
			t.window = max(t.window/2, startWindow)
		}
		t.mu.Unlock()
	}
	return written, nil, true
}

// givenUp ends a transfer whose pipe the pool took away: it writes the bytes
// that were in the pipe and leaves the rest of s to be copied.
func (c *Conn) givenUp(t *transfer, s *Source, written int64) (int64, error, bool) {
	s.NoPipe = NoPipeDescriptors
	t.pl.stats.noPipe[NoPipeDescriptors].Add(1)
	if len(t.pending) > 0 {
		n, err := c.Conn.Write(t.pending)
		written += int64(n)
		if err != nil {
			return written, err, true
		}
	}
	return written, nil, false
}

// unsent returns the bytes the kernel holds in the socket's send queue not
// yet sent (SIOCOUTQNSD), 0 when it cannot tell: more than none means the
// client's receive window is closed, that it does not keep up.
func unsent(rc syscall.RawConn) int {
	n := 0
	rc.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, siocOutqNSD, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}

// descriptor returns the descriptor behind rc, or -1.
func descriptor(rc syscall.RawConn) int {
	fd := -1
	rc.Control(func(d uintptr) { fd = int(d) })
	return fd
}

// readFromSource moves s to the connection, by splice(2) when it can, and
// copies what it could not splice.
func (c *Conn) readFromSource(s *Source) (int64, error) {
	sources.Add(1)
	defer sources.Add(-1)
	n, err, handled := c.spliceFrom(pipes(), s)
	if handled {
		return n, err
	}
	m, err := io.Copy(writerOnly{c.Conn}, s)
	return n + m, err
}
