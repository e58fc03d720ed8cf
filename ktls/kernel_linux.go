package ktls

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// From include/uapi/linux/tls.h: the socket options of level SOL_TLS, the
// versions it takes, and the control messages that carry a record's type.
const (
	solTLS = 282 // SOL_TLS (include/linux/socket.h)

	tlsTX            = 1 // TLS_TX: set transmit parameters
	tlsRX            = 2 // TLS_RX: set receive parameters
	tlsTXZerocopyRO  = 3 // TLS_TX_ZEROCOPY_RO (6.0+)
	tlsRXExpectNoPad = 4 // TLS_RX_EXPECT_NO_PAD (6.0+)

	tls12Version = 0x0303 // TLS_1_2_VERSION
	tls13Version = 0x0304 // TLS_1_3_VERSION

	tlsSetRecordType = 1 // TLS_SET_RECORD_TYPE: cmsg type for sendmsg
	tlsGetRecordType = 2 // TLS_GET_RECORD_TYPE: cmsg type from recvmsg
)

// cryptoInfo lays out a struct tls12_crypto_info_* of include/uapi/linux/
// tls.h: struct tls_crypto_info { __u16 version; __u16 cipher_type; }, then
// iv, key, salt and rec_seq, all byte arrays. The sizes per cipher:
//
//	                    iv  key  salt  rec_seq
//	AES_GCM_128          8   16     4        8
//	AES_GCM_256          8   32     4        8
//	CHACHA20_POLY1305   12   32     0        8
//
// For AES-GCM the kernel's nonce is salt || iv: in TLS 1.3 the derived
// 12-byte IV is split 4/8 (and the kernel XORs in rec_seq); in TLS 1.2 salt
// is the 4-byte implicit nonce and iv the first explicit nonce, which the
// kernel sends in each record and increments, so it starts at the sequence
// number as crypto/tls's explicit nonces do (they then never repeat).
func cryptoInfo(k *trafficKeys, seq uint64) []byte {
	b := binary.NativeEndian.AppendUint16(nil, k.version)
	b = binary.NativeEndian.AppendUint16(b, uint16(k.cipher))
	var recSeq [8]byte
	binary.BigEndian.PutUint64(recSeq[:], seq)
	switch k.cipher {
	case cipherChaCha20Poly1305:
		b = append(b, k.iv...) // 12
		b = append(b, k.key...)
	default:
		switch k.version {
		case tls13Version:
			b = append(b, k.iv[4:12]...)
		default:
			b = append(b, recSeq[:]...)
		}
		b = append(b, k.key...)
		b = append(b, k.iv[:4]...) // salt
	}
	return append(b, recSeq[:]...)
}

// setsockopt sets a SOL_TLS or TCP option from a byte buffer.
func setsockopt(fd, level, opt int, val []byte) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(unsafe.SliceData(val))), uintptr(len(val)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// getsockopt reads a SOL_TLS option into val and returns its length.
func getsockopt(fd, level, opt int, val []byte) (int, error) {
	n := uint32(len(val))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(unsafe.SliceData(val))), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawControl runs f on the descriptor of rc.
func rawControl(rc syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// setULP attaches the tls upper layer protocol to a TCP socket. Until
// TLS_TX or TLS_RX is set, the socket behaves as plain TCP.
func setULP(fd int) error {
	if err := setsockopt(fd, unix.SOL_TCP, unix.TCP_ULP, []byte("tls")); err != nil {
		return fmt.Errorf("setsockopt TCP_ULP tls: %w", err)
	}
	return nil
}

// setKeys installs one direction's keys (TLS_TX or TLS_RX) with the
// sequence number of the next record. A variable so tests can make the
// kernel refuse a direction.
var setKeys = setKeysSockopt

func setKeysSockopt(fd, dir int, k *trafficKeys, seq uint64) error {
	info := cryptoInfo(k, seq)
	defer clear(info)
	if err := setsockopt(fd, solTLS, dir, info); err != nil {
		name := "TLS_TX"
		if dir == tlsRX {
			name = "TLS_RX"
		}
		return fmt.Errorf("setsockopt %s %v: %w", name, k.cipher, err)
	}
	return nil
}

// infoLen is the size of the cipher's struct tls12_crypto_info_*, which
// getsockopt must be given exactly.
func infoLen(c kernelCipher) int {
	if c == cipherAESGCM128 {
		return 4 + 8 + 16 + 4 + 8
	}
	return 4 + 8 + 32 + 4 + 8 // AES-256-GCM; ChaCha20-Poly1305 is 4+12+32+0+8
}

// txSeq returns the sequence number of the next record the kernel sends:
// the rec_seq of getsockopt(SOL_TLS, TLS_TX), which is the struct's last 8
// bytes, big-endian.
func txSeq(fd int, c kernelCipher) (uint64, error) {
	var buf [64]byte
	n, err := getsockopt(fd, solTLS, tlsTX, buf[:infoLen(c)])
	if err != nil {
		return 0, err
	}
	if n < 4+8 {
		return 0, fmt.Errorf("getsockopt TLS_TX returned %d bytes", n)
	}
	clear(buf[4 : n-8]) // the keys
	return binary.BigEndian.Uint64(buf[n-8 : n]), nil
}

// recordTypeCmsg is a control message carrying a record type for
// sendmsg(2) (TLS_SET_RECORD_TYPE).
func recordTypeCmsg(typ byte) []byte {
	b := make([]byte, unix.CmsgSpace(1))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = solTLS
	h.Type = tlsSetRecordType
	h.SetLen(unix.CmsgLen(1))
	b[unix.CmsgLen(0)] = typ
	return b
}

// recordType returns the TLS_GET_RECORD_TYPE of a recvmsg's control data,
// or 0 when there is none.
func recordType(oob []byte) byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == solTLS && m.Header.Type == tlsGetRecordType && len(m.Data) >= 1 {
			return m.Data[0]
		}
	}
	return 0
}
