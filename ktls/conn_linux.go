package ktls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fastpath-go/fastpath/internal/connreg"
)

// aesGCMRecordLimit is when the server re-keys or closes an AES-GCM
// connection: 2^23 records, well below the 2^24.5 full-size records RFC
// 8446 5.5 allows per key. The margin covers a body of unknown length
// handed to ReadFrom in one call, whose records are counted after the call
// (a body of known length is cut so that the count can never pass the
// limit: every record carries at least one byte). A variable so tests can
// reach it.
var aesGCMRecordLimit uint64 = 1 << 23

// ErrRecordLimit is returned by Write and ReadFrom once the connection has
// sent as many records under one key as the server allows and the kernel
// cannot re-key: the connection sent close_notify and ends.
var ErrRecordLimit = errors.New("ktls: record limit of the key reached; connection closed")

// Read reads application data. A close_notify from the client ends it with
// io.EOF; any other alert, and anything else that is not application data
// or a KeyUpdate the kernel can follow, ends the connection with an error.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, typ, eor, err := c.recv(p)
		switch {
		case err != nil:
			if isTimeout(err) {
				return 0, err // not sticky: net/http moves deadlines
			}
			c.rerr = c.readError(err)
			return 0, c.rerr
		case typ == 0 && n == 0:
			// The TCP stream ended without close_notify; crypto/tls reports
			// that as io.EOF as well.
			c.rerr = io.EOF
			return 0, io.EOF
		case typ == recordApplicationData:
			if n == 0 {
				continue // an empty record (allowed in TLS 1.3)
			}
			return n, nil
		}
		// A control record: the kernel returns one at a time, MSG_EOR at
		// its end; gather it whole, whatever the size of p.
		c.ctrl = append(c.ctrl[:0], p[:n]...)
		clear(p[:n])
		for !eor {
			var buf [maxRecordLen]byte
			var t byte
			n, t, eor, err = c.recv(buf[:])
			if err != nil || t != typ {
				c.rerr = c.end(fmt.Errorf("ktls: reading a control record: %v", errors.Join(err, errors.New("record ended early"))), alertDecodeError)
				return 0, c.rerr
			}
			c.ctrl = append(c.ctrl, buf[:n]...)
		}
		if err := c.control(typ, c.ctrl); err != nil {
			c.rerr = err
			return 0, err
		}
	}
}

// recv is one recvmsg(2) with room for TLS_GET_RECORD_TYPE. EAGAIN goes to
// the poller, which also keeps the read deadline.
func (c *Conn) recv(p []byte) (n int, typ byte, eor bool, err error) {
	var oobn, flags int
	var serr error
	err = c.rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, serr = unix.Recvmsg(int(fd), p, c.oob[:], 0)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, 0, false, err
	}
	return n, recordType(c.oob[:oobn]), flags&unix.MSG_EOR != 0, nil
}

// TLS alert descriptions (RFC 8446 6).
const (
	alertCloseNotify       = 0
	alertUnexpectedMessage = 10
	alertBadRecordMAC      = 20
	alertRecordOverflow    = 22
	alertDecodeError       = 50
	alertInternalError     = 80
	alertUserCanceled      = 90
	alertNoRenegotiation   = 100
)

// readError turns a failed recvmsg into the error that ends the
// connection, telling the client with an alert where one applies.
func (c *Conn) readError(err error) error {
	switch {
	case errors.Is(err, unix.EBADMSG):
		return c.end(fmt.Errorf("ktls: a record failed authentication: %w", err), alertBadRecordMAC)
	case errors.Is(err, unix.EMSGSIZE):
		return c.end(fmt.Errorf("ktls: a record too long: %w", err), alertRecordOverflow)
	}
	return err
}

// control handles a record other than application data.
func (c *Conn) control(typ byte, rec []byte) error {
	switch typ {
	case recordAlert:
		if len(rec) != 2 {
			return c.end(errors.New("ktls: malformed alert"), alertDecodeError)
		}
		switch rec[1] {
		case alertCloseNotify:
			return io.EOF
		case alertUserCanceled:
			return nil // a close_notify should follow (RFC 8446 6.1)
		}
		c.fail(fmt.Errorf("ktls: remote error: %w", tls.AlertError(rec[1])))
		return fmt.Errorf("ktls: remote error: %w", tls.AlertError(rec[1]))
	case recordHandshake:
		if c.version != tls.VersionTLS13 {
			return c.end(errors.New("ktls: the client tried to renegotiate"), alertNoRenegotiation)
		}
		for len(rec) > 0 {
			if len(rec) < 4 {
				return c.end(errors.New("ktls: malformed handshake message"), alertDecodeError)
			}
			mlen := int(rec[1])<<16 | int(rec[2])<<8 | int(rec[3])
			if len(rec) < 4+mlen {
				// A message split across records; only KeyUpdate is
				// expected, and it is 5 bytes.
				return c.end(errors.New("ktls: handshake message split across records"), alertUnexpectedMessage)
			}
			msg := rec[:4+mlen]
			rec = rec[4+mlen:]
			if msg[0] != typeKeyUpdate || mlen != 1 || msg[4] > 1 {
				return c.end(fmt.Errorf("ktls: unexpected handshake message %d after the handshake", msg[0]), alertUnexpectedMessage)
			}
			if len(rec) > 0 {
				// RFC 8446 5.1: a KeyUpdate must end its record.
				return c.end(errors.New("ktls: data after a KeyUpdate in its record"), alertUnexpectedMessage)
			}
			return c.keyUpdate(msg[4] == 1)
		}
		return nil
	}
	return c.end(fmt.Errorf("ktls: unexpected record type %d", typ), alertUnexpectedMessage)
}

const typeKeyUpdate = 24 // HandshakeType key_update (RFC 8446 4)

// ErrKeyUpdate is what Read returns when the client sent a KeyUpdate and
// the kernel cannot take new keys (before Linux 6.14): the connection
// sent close_notify and ends, so no record is ever read under a stale key.
var ErrKeyUpdate = errors.New("ktls: the client updated its keys and the kernel cannot re-key; connection closed")

// keyUpdate follows a client's KeyUpdate (RFC 8446 4.6.3): the kernel
// takes the client's next key, and when the client asked for it, the
// server sends its own KeyUpdate and moves to its next key.
func (c *Conn) keyUpdate(requested bool) error {
	if !c.rekey || c.rxKeys == nil {
		c.fail(ErrKeyUpdate)
		c.sendCloseNotify()
		return ErrKeyUpdate
	}
	next := c.rxKeys.next()
	if err := rawControl(c.rc, func(fd int) error { return setKeys(fd, tlsRX, next, 0) }); err != nil {
		next.zero()
		c.fail(ErrKeyUpdate)
		c.sendCloseNotify()
		return fmt.Errorf("%w: %v", ErrKeyUpdate, err)
	}
	c.rxKeys.zero()
	c.rxKeys = next
	if requested {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.updateTXLocked()
	}
	return nil
}

// updateTXLocked sends a KeyUpdate (update_not_requested) under the
// current key and moves the kernel to the next one. Once the KeyUpdate is
// out, the client expects the new key: failing to set it leaves nothing
// safe to send, so the connection is shut down without another record.
func (c *Conn) updateTXLocked() error {
	if err := c.sendRecordLocked(recordHandshake, []byte{typeKeyUpdate, 0, 0, 1, 0}); err != nil {
		c.werr = err
		return err
	}
	next := c.txKeys.next()
	if err := rawControl(c.rc, func(fd int) error { return setKeys(fd, tlsTX, next, 0) }); err != nil {
		next.zero()
		c.werr = fmt.Errorf("ktls: sent KeyUpdate but the kernel refused the new key: %w", err)
		c.fail(c.werr)
		c.inner.Close()
		return c.werr
	}
	c.txKeys.zero()
	c.txKeys = next
	c.allow = 0
	return nil
}

// end ends the connection after a protocol error: it marks it failed, sends
// a fatal alert through the kernel when no write is in flight, and returns
// err.
func (c *Conn) end(err error, alert byte) error {
	c.fail(err)
	if c.wmu.TryLock() {
		c.sendRecordLocked(recordAlert, []byte{2, alert})
		c.werr = err
		c.wmu.Unlock()
	}
	return err
}

// fail records that the connection must end; writes return err from then.
func (c *Conn) fail(err error) { c.failed.CompareAndSwap(nil, &err) }

// sendRecordLocked sends one record of type typ through the kernel
// (sendmsg with TLS_SET_RECORD_TYPE). An alert, the connection's last
// record, is bounded by closeNotifyTimeout; a KeyUpdate keeps the write
// deadline the caller set.
func (c *Conn) sendRecordLocked(typ byte, data []byte) error {
	oob := recordTypeCmsg(typ)
	if typ == recordAlert {
		c.inner.SetWriteDeadline(time.Now().Add(c.closeNotifyTimeout))
	}
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgN(int(fd), data, oob, nil, 0)
		return serr != unix.EAGAIN
	})
	return errors.Join(err, serr)
}

// sendCloseNotify sends close_notify unless a write is in flight (then the
// caller is breaking that write, as with crypto/tls's Close).
func (c *Conn) sendCloseNotify() error {
	if !c.wmu.TryLock() {
		return nil
	}
	defer c.wmu.Unlock()
	if c.werr != nil {
		return nil
	}
	err := c.sendRecordLocked(recordAlert, []byte{1, alertCloseNotify})
	c.werr = net.ErrClosed
	return err
}

// writableLocked returns the error that ends writing, if any.
func (c *Conn) writableLocked() error {
	if e := c.failed.Load(); e != nil {
		return *e
	}
	if c.werr != nil {
		return c.werr
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	return nil
}

// budgetLocked returns how many bytes may be sent now, at most want, and
// acts at the record limit: it re-keys (TLS 1.3 on a kernel that can) or
// sends close_notify and fails with ErrRecordLimit.
//
// Invariant (record limit): the kernel's rec_seq never passes c.limit by
// more than the records of one body of unknown length. allow is the limit
// minus rec_seq as last read, less the bytes sent since through Write and
// ReadFrom; a record carries at least one byte, so sending at most allow
// bytes keeps rec_seq at or below the limit. Guarded by TestRecordLimit.
func (c *Conn) budgetLocked(want int64) (int64, error) {
	if c.limit == 0 {
		return want, nil
	}
	if c.allow <= 0 {
		if err := c.refreshLocked(); err != nil {
			return 0, err
		}
	}
	return min(want, c.allow), nil
}

// refreshLocked reads rec_seq and re-keys or closes at the limit.
func (c *Conn) refreshLocked() error {
	var seq uint64
	err := rawControl(c.rc, func(fd int) error {
		var err error
		seq, err = txSeq(fd, c.cipher)
		return err
	})
	if err != nil {
		c.werr = fmt.Errorf("ktls: reading the record sequence number: %w", err)
		return c.werr
	}
	if seq >= c.limit {
		if c.rekey && c.txKeys != nil {
			return c.updateTXLocked()
		}
		c.sendRecordLocked(recordAlert, []byte{1, alertCloseNotify})
		c.werr = ErrRecordLimit
		return c.werr
	}
	c.allow = int64(c.limit - seq)
	return nil
}

// Write writes application data; the kernel seals it into records.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(p)
}

func (c *Conn) writeLocked(p []byte) (int, error) {
	var total int
	for len(p) > 0 {
		if err := c.writableLocked(); err != nil {
			return total, err
		}
		n, err := c.budgetLocked(int64(len(p)))
		if err != nil {
			return total, err
		}
		m, err := c.inner.Write(p[:n])
		total += m
		c.allow -= int64(m)
		p = p[m:]
		if err != nil {
			c.sendFailedLocked(err)
			return total, err
		}
	}
	return total, nil
}

// ReadFrom sends r's bytes through the accepted connection's ReadFrom, so
// a file goes out by sendfile(2) (and a middleware.Listener connection
// counts it). A body of known length (an *io.LimitedReader, as net/http
// passes a file's body) is cut in pieces at the record limit's budget,
// keeping the LimitedReader one level deep so the runtime still sees the
// file.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableLocked(); err != nil {
		return 0, err
	}
	inner, ok := c.inner.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerFunc(c.writeLocked), r)
	}
	rf := readerFromFunc(func(r io.Reader) (int64, error) {
		n, err := inner.ReadFrom(r)
		switch {
		case err == nil && n > 0:
			err = c.goneLocked()
		case err != nil:
			c.sendFailedLocked(err)
		}
		return n, err
	})
	if c.limit == 0 {
		return rf.ReadFrom(r)
	}
	lr, ok := r.(*io.LimitedReader)
	if !ok {
		// Unknown length: send it whole, then count.
		if _, err := c.budgetLocked(1); err != nil {
			return 0, err
		}
		n, err := rf.ReadFrom(r)
		c.allow = 0
		if rerr := c.refreshLocked(); err == nil && rerr != nil && !errors.Is(rerr, ErrRecordLimit) {
			err = rerr
		}
		return n, err
	}
	var total int64
	for lr.N > 0 {
		if err := c.writableLocked(); err != nil {
			return total, err
		}
		budget, err := c.budgetLocked(lr.N)
		if err != nil {
			return total, err
		}
		piece := &io.LimitedReader{R: lr.R, N: budget}
		n, err := rf.ReadFrom(piece)
		lr.N -= n
		total += n
		c.allow -= n
		if err != nil || n < budget {
			return total, err // the source ended, or failed
		}
	}
	return total, nil
}

type readerFromFunc func(io.Reader) (int64, error)

func (f readerFromFunc) ReadFrom(r io.Reader) (int64, error) { return f(r) }

// tcpClose is TCP_CLOSE of include/net/tcp_states.h: the connection is
// gone (reset, or timed out).
const tcpClose = 7

// goneLocked returns the error a plain TCP socket would have returned for a
// send that a reset connection took: nil while the connection lives.
//
// Linux's kernel TLS sendfile can report a whole file sent when the client
// reset the connection during it, and take a Write after that too
// (measured on 6.1 in the guest, with a read in flight as net/http's
// background read keeps one: the reset's error reaches one system call
// only). A plain TCP socket fails them with ECONNRESET or EPIPE. So after a
// send, the TCP state says whether the connection still exists, and its
// pending error, if any is left, names why. TestResetDuringSendfile,
// TestClientLeavesRecords.
func (c *Conn) goneLocked() error {
	var soErr int
	closed := false
	err := rawControl(c.rc, func(fd int) error {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.State != tcpClose {
			return err
		}
		closed = true
		soErr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		return err
	})
	if err != nil || !closed {
		return nil // as before the check: the send's own result stands
	}
	errno := syscall.EPIPE
	if soErr != 0 {
		errno = syscall.Errno(soErr)
	}
	c.werr = &net.OpError{Op: "readfrom", Net: "tcp", Source: c.laddr, Addr: c.inner.RemoteAddr(), Err: os.NewSyscallError("sendfile", errno)}
	return c.werr
}

// sendFailedLocked keeps a failed send's error for every later one: the
// kernel reports a reset to one call only, and takes the bytes of the next
// ones into records it never sends (see goneLocked). A timeout is not kept:
// net/http moves deadlines.
func (c *Conn) sendFailedLocked(err error) {
	if !isTimeout(err) && c.werr == nil {
		c.werr = err
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Close sends close_notify through the kernel (unless a write is in
// flight, which Close then breaks) and closes the connection.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	connreg.Unregister(c.laddr)
	c.sendCloseNotify()
	c.rxKeys.zero()
	c.txKeys.zero()
	return c.inner.Close()
}

// CloseWrite sends close_notify and shuts down the writing side of the TCP
// connection; reading goes on.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	if c.werr == nil {
		if err := c.sendRecordLocked(recordAlert, []byte{1, alertCloseNotify}); err != nil {
			c.werr = err
			c.wmu.Unlock()
			return err
		}
		c.werr = net.ErrClosed
	}
	c.wmu.Unlock()
	if cw, ok := c.inner.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
