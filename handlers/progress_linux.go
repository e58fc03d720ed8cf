//go:build linux && !386

package handlers

import (
	"encoding/binary"
	"net/http"
	"syscall"
	"unsafe"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
)

// Offsets in Linux's struct tcp_info (include/uapi/linux/tcp.h):
// tcpi_bytes_acked is the __u64 at byte 120, there since Linux 4.1. The
// layout is the same on every architecture.
const (
	tcpInfoBytesAcked = 120
	tcpInfoLen        = 232 // room for the fields this package knows of
)

// connProgress returns a measure of what the client has taken: the bytes
// of the connection the peer has acknowledged (tcpi_bytes_acked), read with
// getsockopt(TCP_INFO) from the connection's descriptor. The peer's TCP
// acknowledges data as its receive window takes it, and the window reopens
// only as the reader reads, so the measure moves while the client reads, at
// any rate, and stops when it stops (WithSendTimeout says how often it
// moves). It returns nil when the connection cannot be reached (the server
// does not accept through middleware.Listener, which registers each
// connection for its requests' contexts) or cannot be measured (not TCP, or
// a kernel older than 4.1).
func connProgress(r *http.Request) func() (int64, bool) {
	c := zerocopy.FromContext(r.Context())
	if c == nil {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	measure := func() (int64, bool) {
		var (
			acked uint64
			ok    bool
		)
		// Control takes no lock that a sendfile(2) in progress holds.
		err := rc.Control(func(fd uintptr) { acked, ok = bytesAcked(fd) })
		return int64(acked), err == nil && ok
	}
	if _, ok := measure(); !ok {
		return nil
	}
	return measure
}

// bytesAcked reads tcpi_bytes_acked of the TCP socket fd.
func bytesAcked(fd uintptr) (uint64, bool) {
	var info [tcpInfoLen]byte
	n := uint32(len(info))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 || n < tcpInfoBytesAcked+8 {
		return 0, false
	}
	return binary.NativeEndian.Uint64(info[tcpInfoBytesAcked:]), true
}
