package ktls

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a TLS connection whose records the kernel seals and opens
// (kernel TLS). Read, Write and ReadFrom are plain system calls on the
// socket: net/http's response.ReadFrom reaches the accepted connection's
// ReadFrom, so files go out by sendfile(2), encrypted by the kernel, and a
// middleware.Listener connection beneath counts them.
//
// It has no SyscallConn: every byte goes through Read, Write or ReadFrom,
// so none escapes the record limits and the close_notify handling.
type Conn struct {
	inner   net.Conn // the accepted connection
	rc      syscall.RawConn
	laddr   net.Addr
	state   tls.ConnectionState
	version uint16
	cipher  kernelCipher
	rekey   bool // the kernel can take new keys (TLS 1.3 KeyUpdate)

	closeNotifyTimeout time.Duration
	closed             atomic.Bool
	failed             atomic.Pointer[error] // set when the connection must end; checked by writers

	rmu    sync.Mutex
	rerr   error // sticky: io.EOF after close_notify, or what ended the connection
	oob    [64]byte
	ctrl   []byte
	rxKeys *trafficKeys // TLS 1.3 with a re-keying kernel only

	wmu    sync.Mutex
	werr   error // sticky
	txKeys *trafficKeys
	limit  uint64 // records per key before re-keying or closing; 0: none
	allow  int64  // bytes that may be sent before rec_seq must be read again
}

var (
	_ net.Conn      = (*Conn)(nil)
	_ io.ReaderFrom = (*Conn)(nil)
)

// ConnectionState returns the session's state as crypto/tls reported it at
// the end of the handshake.
func (c *Conn) ConnectionState() tls.ConnectionState { return c.state }

// NetConn returns the accepted connection beneath.
func (c *Conn) NetConn() net.Conn { return c.inner }

// LocalAddr returns the local address: the Conn's own copy, by which
// FromContext finds it.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.inner.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.inner.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }

func (c *Conn) ktlsState() State { return State{Kernel: true} }
