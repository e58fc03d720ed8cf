package zerocopy

import (
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
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
// falls back to a copy that is counted as nothing.

const (
	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK: the pipe ends never block

	// pipeSize is the pipe buffer asked for with F_SETPIPE_SZ: 1 MiB, the
	// default /proc/sys/fs/pipe-max-size, so each pair of calls moves up
	// to 1 MiB (the runtime asks for the same).
	pipeSize   = 1 << 20
	fSetPipeSz = 1031 // F_SETPIPE_SZ
)

// pipe is a kernel pipe that bytes pass through between two sockets.
type pipe struct {
	r, w    int
	size    int // the capacity, as the kernel set it
	data    int // bytes in the pipe: nonzero only after a failed pump
	cleanup runtime.Cleanup
}

// close closes the pipe's descriptors now, and stops the cleanup that would
// otherwise close them (or whatever reused their numbers) again later.
func (p *pipe) close() {
	p.cleanup.Stop()
	syscall.Close(p.r)
	syscall.Close(p.w)
}

// pipes keeps pipes between splices; a pipe dropped by the pool is closed by
// its cleanup.
var pipes = sync.Pool{New: func() any {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil
	}
	p := &pipe{r: fds[0], w: fds[1], size: 64 << 10}
	// A smaller pipe still works, with more calls.
	if n, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(p.w), fSetPipeSz, pipeSize); errno == 0 {
		p.size = int(n)
	}
	p.cleanup = runtime.AddCleanup(p, func(fds [2]int) {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	}, fds)
	return p
}}

func getPipe() *pipe {
	p, _ := pipes.Get().(*pipe)
	return p
}

// putPipe returns p to the pool, or closes it when bytes are stranded in
// it: they belong to a body that failed, and must never reach another.
func putPipe(p *pipe) {
	if p.data != 0 {
		p.close()
		return
	}
	pipes.Put(p)
}

// spliceFrom moves s to the connection with splice(2). handled is false
// when the source or the connection offers no descriptor, no pipe could be
// made, or the kernel refused the first splice: nothing was moved, and the
// caller copies instead.
func (c *Conn) spliceFrom(s *Source) (written int64, err error, handled bool) {
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
	p := getPipe()
	if p == nil {
		return 0, nil, false
	}
	defer putPipe(p)
	first := true
	for s.N > 0 && s.Err == nil {
		// Drain: socket to pipe. The pipe is empty here, so EAGAIN means
		// the socket has nothing to read yet.
		var inPipe int64
		var serr error
		rerr := src.Read(func(fd uintptr) bool {
			for {
				inPipe, serr = syscall.Splice(int(fd), nil, p.w, nil, int(min(s.N, int64(p.size))), spliceMove|spliceNonblock)
				if serr != syscall.EINTR {
					return serr != syscall.EAGAIN
				}
			}
		})
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
		p.data = int(inPipe)
		// Pump: pipe to socket, until the pipe is empty.
		for p.data > 0 {
			var n int64
			werr := dst.Write(func(fd uintptr) bool {
				for {
					n, serr = syscall.Splice(p.r, nil, int(fd), nil, p.data, spliceMove|spliceNonblock)
					if serr != syscall.EINTR {
						return serr != syscall.EAGAIN
					}
				}
			})
			if n > 0 {
				p.data -= int(n)
				written += n
				c.splice.Add(n)
			}
			if werr != nil {
				return written, werr, true
			}
			if serr != nil && n <= 0 {
				return written, os.NewSyscallError("splice", serr), true
			}
		}
	}
	return written, nil, true
}

// readFromSource moves s to the connection, by splice(2) when it can.
func (c *Conn) readFromSource(s *Source) (int64, error) {
	if n, err, handled := c.spliceFrom(s); handled {
		return n, err
	}
	return io.Copy(writerOnly{c.Conn}, s)
}
