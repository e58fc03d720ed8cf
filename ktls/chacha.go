package ktls

import (
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// The standard library keeps its ChaCha20-Poly1305 internal, and the only
// use here is to check which records of a handshake a key authenticates
// (trial.go), so this file implements the AEAD's tag check from RFC 8439:
// the ChaCha20 block function (2.3), Poly1305 (2.5) and the AEAD
// construction's MAC input (2.8). It never protects data of its own.

// chachaBlock returns the 64-byte ChaCha20 block for key, counter and nonce
// (RFC 8439 2.3).
func chachaBlock(key *[32]byte, counter uint32, nonce []byte) [64]byte {
	var s, x [16]uint32
	s[0], s[1], s[2], s[3] = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 // "expand 32-byte k"
	for i := range 8 {
		s[4+i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	s[12] = counter
	for i := range 3 {
		s[13+i] = binary.LittleEndian.Uint32(nonce[4*i:])
	}
	x = s
	qr := func(a, b, c, d int) {
		x[a] += x[b]
		x[d] = bits.RotateLeft32(x[d]^x[a], 16)
		x[c] += x[d]
		x[b] = bits.RotateLeft32(x[b]^x[c], 12)
		x[a] += x[b]
		x[d] = bits.RotateLeft32(x[d]^x[a], 8)
		x[c] += x[d]
		x[b] = bits.RotateLeft32(x[b]^x[c], 7)
	}
	for range 10 {
		qr(0, 4, 8, 12)
		qr(1, 5, 9, 13)
		qr(2, 6, 10, 14)
		qr(3, 7, 11, 15)
		qr(0, 5, 10, 15)
		qr(1, 6, 11, 12)
		qr(2, 7, 8, 13)
		qr(3, 4, 9, 14)
	}
	var out [64]byte
	for i := range 16 {
		binary.LittleEndian.PutUint32(out[4*i:], x[i]+s[i])
	}
	return out
}

// poly1305 accumulates 16-byte blocks into h = (h + block) * r mod 2^130-5
// (RFC 8439 2.5), with h in three 64-bit limbs.
type poly1305 struct {
	r0, r1     uint64
	s0, s1     uint64
	h0, h1, h2 uint64
}

func newPoly1305(key []byte) *poly1305 {
	return &poly1305{
		// Clamping clears the top 4 bits of every 32-bit word of r and the
		// low 2 bits of its upper three words.
		r0: binary.LittleEndian.Uint64(key[0:]) & 0x0ffffffc0fffffff,
		r1: binary.LittleEndian.Uint64(key[8:]) & 0x0ffffffc0ffffffc,
		s0: binary.LittleEndian.Uint64(key[16:]),
		s1: binary.LittleEndian.Uint64(key[24:]),
	}
}

// block adds one block of up to 16 bytes. A full block counts with a 1 bit
// above its 128 bits; a shorter last block gets the 1 byte after its end.
func (p *poly1305) block(m []byte) {
	var buf [16]byte
	copy(buf[:], m)
	var hibit uint64 = 1
	if len(m) < 16 {
		buf[len(m)] = 1
		hibit = 0
	}
	var c uint64
	p.h0, c = bits.Add64(p.h0, binary.LittleEndian.Uint64(buf[0:]), 0)
	p.h1, c = bits.Add64(p.h1, binary.LittleEndian.Uint64(buf[8:]), c)
	p.h2 += c + hibit

	// h * r: r0 and r1 are below 2^60 after clamping and h2 stays below 8,
	// so h2*r0 and h2*r1 fit in 64 bits.
	hi00, lo00 := bits.Mul64(p.h0, p.r0)
	hi01, lo01 := bits.Mul64(p.h0, p.r1)
	hi10, lo10 := bits.Mul64(p.h1, p.r0)
	hi11, lo11 := bits.Mul64(p.h1, p.r1)
	m20, m21 := p.h2*p.r0, p.h2*p.r1

	t0 := lo00
	t1, c1 := bits.Add64(hi00, lo01, 0)
	t2, c2 := bits.Add64(hi01, hi10, c1)
	t3 := hi11 + c2
	t1, c1 = bits.Add64(t1, lo10, 0)
	t2, c2 = bits.Add64(t2, lo11, c1)
	t3 += c2
	t2, c2 = bits.Add64(t2, m20, 0)
	t3 += c2 + m21

	// Reduce: 2^130 = 5 mod p, so with t = low + 2^130*high,
	// t = low + 4*high + high, where 4*high is t with its low 130 bits
	// cleared, shifted down by 128.
	hh0 := t2>>2 | t3<<62
	hh1 := t3 >> 2
	p.h0, c = bits.Add64(t0, t2&^3, 0)
	p.h1, c = bits.Add64(t1, t3, c)
	p.h2 = t2&3 + c
	p.h0, c = bits.Add64(p.h0, hh0, 0)
	p.h1, c = bits.Add64(p.h1, hh1, c)
	p.h2 += c
}

// sum returns the tag: h fully reduced mod 2^130-5, plus s, mod 2^128.
func (p *poly1305) sum() [16]byte {
	h0, h1, h2 := p.h0, p.h1, p.h2
	// Fold bits 130 and up once more, then subtract p if h >= p, which is
	// when h+5 reaches 2^130.
	var c uint64
	h0, c = bits.Add64(h0, (h2>>2)*5, 0)
	h1, c = bits.Add64(h1, 0, c)
	h2 = h2&3 + c
	g0, c := bits.Add64(h0, 5, 0)
	g1, c := bits.Add64(h1, 0, c)
	g2 := h2 + c
	if g2>>2 != 0 {
		h0, h1 = g0, g1
	}
	var tag [16]byte
	h0, c = bits.Add64(h0, p.s0, 0)
	h1, _ = bits.Add64(h1, p.s1, c)
	binary.LittleEndian.PutUint64(tag[0:], h0)
	binary.LittleEndian.PutUint64(tag[8:], h1)
	return tag
}

func (p *poly1305) write(m []byte) {
	for len(m) >= 16 {
		p.block(m[:16])
		m = m[16:]
	}
	if len(m) > 0 {
		p.block(m)
	}
}

// writePadded writes m followed by zeros up to a multiple of 16 bytes, as
// the AEAD construction lays out its MAC input (RFC 8439 2.8).
func (p *poly1305) writePadded(m []byte) {
	for len(m) >= 16 {
		p.block(m[:16])
		m = m[16:]
	}
	if len(m) > 0 {
		var buf [16]byte
		copy(buf[:], m)
		p.block(buf[:])
	}
}

// chachaTag computes the ChaCha20-Poly1305 tag of ciphertext and aad.
func chachaTag(key *[32]byte, nonce, ciphertext, aad []byte) [16]byte {
	otk := chachaBlock(key, 0, nonce)
	p := newPoly1305(otk[:32])
	p.writePadded(aad)
	p.writePadded(ciphertext)
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[0:], uint64(len(aad)))
	binary.LittleEndian.PutUint64(lens[8:], uint64(len(ciphertext)))
	p.block(lens[:])
	return p.sum()
}

// chachaVerify reports whether sealed (ciphertext then 16-byte tag)
// authenticates under key, nonce and aad.
func chachaVerify(key *[32]byte, nonce, sealed, aad []byte) bool {
	if len(sealed) < 16 {
		return false
	}
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	want := chachaTag(key, nonce, ct, aad)
	return subtle.ConstantTimeCompare(want[:], tag) == 1
}

// chachaXOR encrypts or decrypts p in place with the key stream from
// block counter 1 on, as the AEAD does (RFC 8439 2.8). Tests use it to
// check chachaBlock against crypto/tls's records.
func chachaXOR(key *[32]byte, nonce, p []byte) {
	for i, ctr := 0, uint32(1); i < len(p); i, ctr = i+64, ctr+1 {
		ks := chachaBlock(key, ctr, nonce)
		for j := 0; j < 64 && i+j < len(p); j++ {
			p[i+j] ^= ks[j]
		}
	}
}
