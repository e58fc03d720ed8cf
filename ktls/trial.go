package ktls

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
)

// TLS record content types (RFC 8446 5.1, RFC 5246 6.2.1).
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23

	recordHeaderLen = 5
	maxRecordLen    = 16384 + 256 // largest TLSCiphertext.length (RFC 8446 5.2)
	tagLen          = 16          // every AEAD here
)

// recordLog splits a byte stream into whole TLS records, keeping each one
// (header included) up to a cap on their total size.
type recordLog struct {
	pending  []byte   // bytes of a record not yet complete
	records  [][]byte // complete records, in order
	size     int
	overflow bool
}

// maxCapture bounds what a handshake may make a connection keep: far above
// any certificate chain in use, far below what would hurt.
const maxCapture = 1 << 20

func (l *recordLog) write(p []byte) {
	if l.overflow {
		return
	}
	l.size += len(p)
	if l.size > maxCapture {
		l.overflow = true
		l.pending, l.records = nil, nil
		return
	}
	l.pending = append(l.pending, p...)
	for len(l.pending) >= recordHeaderLen {
		n := recordHeaderLen + int(binary.BigEndian.Uint16(l.pending[3:5]))
		if len(l.pending) < n {
			break
		}
		l.records = append(l.records, l.pending[:n:n])
		l.pending = l.pending[n:]
	}
}

// complete reports whether the stream ended on a record boundary with
// nothing dropped.
func (l *recordLog) complete() bool { return !l.overflow && len(l.pending) == 0 }

// open reports whether rec, a whole record, authenticates under k with
// sequence number seq: the AEAD check the peer makes (RFC 8446 5.2 for TLS
// 1.3; RFC 5246 6.2.3.3 with RFC 5288 3 and RFC 7905 2 for TLS 1.2).
func (k *trafficKeys) open(rec []byte, seq uint64) bool {
	if len(rec) < recordHeaderLen+tagLen {
		return false
	}
	hdr, body := rec[:recordHeaderLen], rec[recordHeaderLen:]
	nonce := make([]byte, 12)
	var aad []byte
	switch k.version {
	case tls.VersionTLS13:
		// The nonce is the IV XOR the sequence number, left-padded; the
		// additional data is the record header.
		copy(nonce, k.iv)
		for i := range 8 {
			nonce[4+i] ^= byte(seq >> (56 - 8*i))
		}
		aad = hdr
	case tls.VersionTLS12:
		sealed := body
		if k.cipher != cipherChaCha20Poly1305 {
			// GCM: the salt, then the 8-byte explicit nonce the record
			// carries in front of the ciphertext.
			if len(body) < 8+tagLen {
				return false
			}
			copy(nonce, k.iv[:4])
			copy(nonce[4:], body[:8])
			sealed = body[8:]
		} else {
			copy(nonce, k.iv)
			for i := range 8 {
				nonce[4+i] ^= byte(seq >> (56 - 8*i))
			}
		}
		// seq_num, type, version, and the plaintext's length.
		aad = binary.BigEndian.AppendUint64(nil, seq)
		aad = append(aad, hdr[0], hdr[1], hdr[2])
		aad = binary.BigEndian.AppendUint16(aad, uint16(len(sealed)-tagLen))
		body = sealed
	default:
		return false
	}
	if k.cipher == cipherChaCha20Poly1305 {
		var key [32]byte
		copy(key[:], k.key)
		return chachaVerify(&key, nonce, body, aad)
	}
	g := k.aead()
	if g == nil {
		return false
	}
	_, err := g.Open(nil, nonce, body, aad)
	return err == nil
}

var errRecordOrder = errors.New("ktls: records after the first under the application key do not follow in sequence")

// countRecords returns how many of records were protected under k: the
// sequence number the next record under k must carry. Records under k form
// a run to the end of the log (crypto/tls never returns to an earlier key),
// so the count is the length of that run, found by trial: the first record
// that opens at sequence 0 starts it, and every later record must open at
// the next number. An AEAD check does not pass under the wrong key or
// number (short of a forgery), so the count is exact rather than inferred
// from how crypto/tls happens to schedule its messages.
func countRecords(k *trafficKeys, records [][]byte) (uint64, error) {
	for i, rec := range records {
		if !candidate(k.version, rec) || !k.open(rec, 0) {
			continue
		}
		seq := uint64(1)
		for _, r := range records[i+1:] {
			if !k.open(r, seq) {
				return 0, errRecordOrder
			}
			seq++
		}
		return seq, nil
	}
	return 0, nil
}

// candidate reports whether rec can be protected at all: TLS 1.3 protects
// everything after the ServerHello as application_data records; TLS 1.2's
// protected records are the Finished (handshake) and application data.
func candidate(version uint16, rec []byte) bool {
	switch rec[0] {
	case recordApplicationData:
		return true
	case recordHandshake, recordAlert:
		return version == tls.VersionTLS12
	}
	return false
}

var errNoServerHello = errors.New("ktls: no ServerHello among the records written")

// serverRandom returns the random of the ServerHello among records
// (RFC 5246 7.4.1.3): TLS 1.2 derives the keys from it.
func serverRandom(records [][]byte) ([]byte, error) {
	for _, rec := range records {
		if rec[0] != recordHandshake {
			continue
		}
		body := rec[recordHeaderLen:]
		// msg_type(1) length(3) server_version(2) random(32)
		if len(body) >= 4+2+32 && body[0] == 2 {
			return body[6:38], nil
		}
		break
	}
	return nil, errNoServerHello
}
