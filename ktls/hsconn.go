package ktls

import (
	"encoding/binary"
	"net"
	"sync/atomic"

	"github.com/fastpath-go/fastpath/internal/connreg"
)

// hsConn sits beneath crypto/tls. During the handshake it hands crypto/tls
// one TLS record at a time and keeps a copy of every record in both
// directions, so the hand-off can tell exactly where each direction's
// records under the application keys begin; afterwards, for a connection
// that falls back, it passes bytes through and answers the fallback reason
// (StateOf finds it beneath the *tls.Conn).
//
// Invariant (record boundary): during the handshake, Read never returns
// bytes past the end of the TLS record being read. crypto/tls reads ahead
// whatever the connection gives it; bounded this way it holds no byte of
// the record after the client's Finished when the handshake returns, so
// the kernel's receive side starts exactly there and a request pipelined
// right behind the handshake is served. Guarded by TestPipelinedRequest
// (in the guest) and TestRecordBoundary.
type hsConn struct {
	net.Conn
	laddr net.Addr

	// Handshake-time state, used by one goroutine (the handshake's) and
	// then read by the hand-off on the same goroutine.
	bounded bool
	hdr     [recordHeaderLen]byte
	hdrHave int
	left    int // bytes of the current record's body still to read
	in, out recordLog
	keys    keyLog

	reason atomic.Value // Reason, once the connection fell back
}

func newHSConn(c net.Conn) *hsConn {
	h := &hsConn{Conn: c, bounded: true}
	h.laddr = connreg.Register(h, c.LocalAddr())
	return h
}

// Read reads from the connection, during the handshake at most to the end
// of the current record.
func (h *hsConn) Read(p []byte) (int, error) {
	if !h.bounded {
		return h.Conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if h.hdrHave < recordHeaderLen {
		n, err := h.Conn.Read(p[:min(len(p), recordHeaderLen-h.hdrHave)])
		copy(h.hdr[h.hdrHave:], p[:n])
		h.hdrHave += n
		h.in.write(p[:n])
		if h.hdrHave == recordHeaderLen {
			h.left = int(binary.BigEndian.Uint16(h.hdr[3:5]))
			if h.left == 0 {
				h.hdrHave = 0
			}
		}
		return n, err
	}
	n, err := h.Conn.Read(p[:min(len(p), h.left)])
	h.in.write(p[:n])
	h.left -= n
	if h.left == 0 {
		h.hdrHave = 0
	}
	return n, err
}

// Write writes to the connection, during the handshake keeping a copy of
// the records crypto/tls sends.
func (h *hsConn) Write(p []byte) (int, error) {
	if h.bounded {
		h.out.write(p)
	}
	return h.Conn.Write(p)
}

// atBoundary reports whether crypto/tls has read whole records only.
func (h *hsConn) atBoundary() bool { return h.hdrHave == 0 && h.left == 0 && h.in.complete() }

// endHandshake stops bounding reads and keeping records.
func (h *hsConn) endHandshake() {
	h.bounded = false
	h.in, h.out = recordLog{}, recordLog{}
	h.keys.zero()
}

func (h *hsConn) LocalAddr() net.Addr { return h.laddr }
func (h *hsConn) NetConn() net.Conn   { return h.Conn }

// Close closes the connection and removes it from the registry.
func (h *hsConn) Close() error {
	connreg.Unregister(h.laddr)
	return h.Conn.Close()
}

func (h *hsConn) ktlsState() State {
	r, _ := h.reason.Load().(Reason)
	return State{Reason: r}
}
