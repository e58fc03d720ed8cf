package ktls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fastpath-go/fastpath/internal/connreg"
)

// kernelHandOff hands a finished session to the kernel. It returns the
// *Conn; or a fallback reason, with the socket exactly as crypto/tls left
// it; or an error when the connection had to be closed.
//
// Invariant (no plaintext, no double encryption): the socket option that
// changes what a write does to the bytes is TLS_TX, and it is set last but
// one. Everything before it (reading the keys, counting records, the
// probe, TCP_ULP, which leaves a socket plain TCP until a direction is
// configured) either succeeds or leaves crypto/tls in charge, so every
// failure before TLS_TX is in force falls back. A failure of TLS_TX itself
// changes nothing. Only TLS_RX, set after TLS_TX, can fail with TLS_TX in
// force; then crypto/tls can no longer write (the kernel would encrypt its
// records again) and the kernel cannot read, so the connection is closed
// with a close_notify sealed by the kernel, and never a byte of
// plaintext. The probe makes that case rare. Guarded by
// TestHandOffFailures.
func kernelHandOff(h *hsConn, cs *tls.ConnectionState) (*Conn, Reason, error) {
	if !h.atBoundary() || !h.out.complete() {
		return nil, FallbackKeys, nil
	}
	rx, tx, err := h.keys.sessionKeys(cs, func() ([]byte, error) { return serverRandom(h.out.records) })
	if err != nil {
		return nil, FallbackKeys, nil
	}
	defer rx.zero()
	defer tx.zero()
	// Invariant (sequence numbers): the kernel must continue each
	// direction's numbering where crypto/tls left it: the server has sent
	// its session tickets (TLS 1.3) or its Finished (TLS 1.2) under the
	// application key, the client its Finished (TLS 1.2). countRecords
	// counts them by AEAD checks. Guarded by TestCountRecords and, in the
	// guest, by every download with tickets on and off.
	txSeq, err := countRecords(tx, h.out.records)
	if err != nil {
		return nil, FallbackKeys, nil
	}
	rxSeq, err := countRecords(rx, h.in.records)
	if err != nil {
		return nil, FallbackKeys, nil
	}
	if cs.Version == tls.VersionTLS12 && (txSeq == 0 || rxSeq == 0) {
		// Each side's Finished is under these keys: keys that open
		// neither are wrong.
		return nil, FallbackKeys, nil
	}

	sc, ok := h.Conn.(syscall.Conn)
	if !ok {
		return nil, FallbackNotTCP, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, FallbackNotTCP, nil
	}
	if err := rawControl(rc, isTCP); err != nil {
		return nil, FallbackNotTCP, nil
	}
	sup := probe(cs.Version, tx.cipher)
	if sup.reason != InKernel {
		return nil, sup.reason, nil
	}
	if err := rawControl(rc, setULP); err != nil {
		return nil, FallbackSetsockopt, nil
	}
	if err := rawControl(rc, func(fd int) error { return setKeys(fd, tlsTX, tx, txSeq) }); err != nil {
		return nil, FallbackSetsockopt, nil
	}
	// TLS_TX is in force: from here on no byte may be written but through
	// the kernel.
	if err := rawControl(rc, func(fd int) error { return setKeys(fd, tlsRX, rx, rxSeq) }); err != nil {
		c := newConn(h, rc, cs, rx, tx, sup)
		c.Close() // sends close_notify through the kernel
		return nil, InKernel, fmt.Errorf("ktls: TLS_TX in force but %w; closed", err)
	}
	return newConn(h, rc, cs, rx, tx, sup), InKernel, nil
}

// isTCP reports an error unless fd is a TCP socket.
func isTCP(fd int) error {
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return err
	}
	if proto != unix.IPPROTO_TCP {
		return errors.New("not TCP")
	}
	return nil
}

// newConn makes the *Conn for a socket whose keys are in the kernel. It
// keeps the TLS 1.3 traffic secrets only when the kernel can re-key.
func newConn(h *hsConn, rc syscall.RawConn, cs *tls.ConnectionState, rx, tx *trafficKeys, sup support) *Conn {
	connreg.Unregister(h.laddr)
	c := &Conn{
		inner:   h.Conn,
		rc:      rc,
		state:   *cs,
		version: cs.Version,
		cipher:  tx.cipher,
		rekey:   sup.rekey,
	}
	if tx.cipher != cipherChaCha20Poly1305 {
		// RFC 8446 5.5 bounds AES-GCM to 2^24.5 full-size records per key;
		// nothing bounds ChaCha20-Poly1305 below the sequence number's wrap.
		c.limit = aesGCMRecordLimit
	}
	if sup.rekey && cs.Version == tls.VersionTLS13 {
		c.rxKeys, c.txKeys = rx.clone(), tx.clone()
	}
	c.closeNotifyTimeout = closeNotifyTimeout
	c.laddr = connreg.Register(c, h.Conn.LocalAddr())
	return c
}

// closeNotifyTimeout bounds the close_notify Close sends, as crypto/tls
// does, so a client that stopped reading cannot hold Close.
const closeNotifyTimeout = 5 * time.Second

var _ net.Conn = (*Conn)(nil)
