package ktls

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"
)

// kernelCipher is a cipher the kernel's tls module can take over, as
// linux/tls.h numbers them.
type kernelCipher uint16

// Ciphers from include/uapi/linux/tls.h (TLS_CIPHER_*).
const (
	cipherAESGCM128        kernelCipher = 51 // TLS_CIPHER_AES_GCM_128
	cipherAESGCM256        kernelCipher = 52 // TLS_CIPHER_AES_GCM_256
	cipherChaCha20Poly1305 kernelCipher = 54 // TLS_CIPHER_CHACHA20_POLY1305
)

func (k kernelCipher) String() string {
	switch k {
	case cipherAESGCM128:
		return "AES-128-GCM"
	case cipherAESGCM256:
		return "AES-256-GCM"
	case cipherChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return "unknown"
}

// keyLen is the cipher's key size; fixedIVLen is the part of the nonce the
// key schedule gives: the 4-byte salt of AES-GCM in TLS 1.2 (RFC 5288 3),
// the whole 12-byte IV otherwise (RFC 8446 5.3, RFC 7905 2).
func (k kernelCipher) keyLen() int {
	if k == cipherAESGCM128 {
		return 16
	}
	return 32
}

func (k kernelCipher) fixedIVLen(version uint16) int {
	if version == tls.VersionTLS12 && k != cipherChaCha20Poly1305 {
		return 4
	}
	return 12
}

// suite is what the hand-off needs to know of a negotiated cipher suite.
type suite struct {
	cipher kernelCipher
	hash   func() hash.Hash
}

// suiteFor returns the kernel cipher of a negotiated TLS 1.2 or 1.3 suite,
// or false for a suite the kernel cannot take (CBC and the like).
func suiteFor(id uint16) (suite, bool) {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256:
		return suite{cipherAESGCM128, sha256.New}, true
	case tls.TLS_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_AES_256_GCM_SHA384:
		return suite{cipherAESGCM256, sha512.New384}, true
	case tls.TLS_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return suite{cipherChaCha20Poly1305, sha256.New}, true
	}
	return suite{}, false
}

// trafficKeys protect one direction of a connection.
type trafficKeys struct {
	version uint16
	cipher  kernelCipher
	key     []byte
	iv      []byte // fixedIVLen bytes
	secret  []byte // TLS 1.3: the traffic secret, for the next KeyUpdate
	hash    func() hash.Hash
}

// zero overwrites the key material, once it is in the kernel or unused.
func (k *trafficKeys) zero() {
	if k == nil {
		return
	}
	clear(k.key)
	clear(k.iv)
	clear(k.secret)
}

// hkdfExpandLabel is HKDF-Expand-Label (RFC 8446 7.1).
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) []byte {
	info := make([]byte, 0, 2+1+6+len(label)+1+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), length)
	if err != nil {
		panic("fastpath/ktls: HKDF-Expand: " + err.Error()) // lengths are constants far below the limit
	}
	return out
}

// tls13Keys derives a direction's key and IV from its traffic secret
// (RFC 8446 7.3).
func tls13Keys(s suite, secret []byte) *trafficKeys {
	return &trafficKeys{
		version: tls.VersionTLS13,
		cipher:  s.cipher,
		key:     hkdfExpandLabel(s.hash, secret, "key", nil, s.cipher.keyLen()),
		iv:      hkdfExpandLabel(s.hash, secret, "iv", nil, 12),
		secret:  bytes.Clone(secret),
		hash:    s.hash,
	}
}

// next returns the keys after a KeyUpdate: the next traffic secret is
// HKDF-Expand-Label(secret, "traffic upd", "", Hash.length) (RFC 8446 7.2).
func (k *trafficKeys) next() *trafficKeys {
	s := suite{cipher: k.cipher, hash: k.hash}
	n := tls13Keys(s, hkdfExpandLabel(k.hash, k.secret, "traffic upd", nil, k.hash().Size()))
	return n
}

// prf12 is the TLS 1.2 PRF, P_hash over label and seed (RFC 5246 5).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, length int) []byte {
	labelSeed := append([]byte(label), seed...)
	out := make([]byte, 0, length+64)
	mac := hmac.New(h, secret)
	mac.Write(labelSeed)
	a := mac.Sum(nil) // A(1)
	for len(out) < length {
		mac.Reset()
		mac.Write(a)
		mac.Write(labelSeed)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:length]
}

// tls12Keys derives both directions' keys from the master secret: the key
// block is PRF(master, "key expansion", server_random + client_random),
// split into client and server write keys, then client and server write
// IVs (RFC 5246 6.3; AEAD suites have no MAC keys).
func tls12Keys(s suite, master, clientRandom, serverRandom []byte) (client, server *trafficKeys) {
	kl, il := s.cipher.keyLen(), s.cipher.fixedIVLen(tls.VersionTLS12)
	block := prf12(s.hash, master, "key expansion", append(bytes.Clone(serverRandom), clientRandom...), 2*kl+2*il)
	defer clear(block)
	mk := func(key, iv []byte) *trafficKeys {
		return &trafficKeys{version: tls.VersionTLS12, cipher: s.cipher, key: bytes.Clone(key), iv: bytes.Clone(iv), hash: s.hash}
	}
	client = mk(block[:kl], block[2*kl:2*kl+il])
	server = mk(block[kl:2*kl], block[2*kl+il:2*kl+2*il])
	return client, server
}

// keyLog collects the secrets crypto/tls writes to Config.KeyLogWriter
// (the NSS key log format: "LABEL <client random> <secret>" lines) for one
// connection, and forwards every line to the user's KeyLogWriter if set.
type keyLog struct {
	forward interface{ Write([]byte) (int, error) }

	mu            sync.Mutex
	clientTraffic []byte // CLIENT_TRAFFIC_SECRET_0 (TLS 1.3)
	serverTraffic []byte // SERVER_TRAFFIC_SECRET_0 (TLS 1.3)
	clientRandom  []byte // from CLIENT_RANDOM (TLS 1.2)
	master        []byte // CLIENT_RANDOM's secret: the TLS 1.2 master secret
}

// Write takes one key log line; crypto/tls writes each line in one call.
func (k *keyLog) Write(line []byte) (int, error) {
	f := strings.Fields(string(line))
	if len(f) == 3 {
		random, err1 := hex.DecodeString(f[1])
		secret, err2 := hex.DecodeString(f[2])
		if err1 == nil && err2 == nil {
			k.mu.Lock()
			switch f[0] {
			case "CLIENT_TRAFFIC_SECRET_0":
				k.clientTraffic = secret
			case "SERVER_TRAFFIC_SECRET_0":
				k.serverTraffic = secret
			case "CLIENT_RANDOM":
				k.clientRandom, k.master = random, secret
			default:
				clear(secret)
			}
			k.mu.Unlock()
		}
	}
	if k.forward != nil {
		return k.forward.Write(line)
	}
	return len(line), nil
}

// zero forgets the secrets.
func (k *keyLog) zero() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.clientTraffic)
	clear(k.serverTraffic)
	clear(k.master)
}

var errNoSecrets = errors.New("ktls: crypto/tls logged no secrets for the session")

// sessionKeys derives both directions' keys of a finished handshake from
// the logged secrets; serverRandom is only needed for TLS 1.2.
func (k *keyLog) sessionKeys(cs *tls.ConnectionState, serverRandom func() ([]byte, error)) (rx, tx *trafficKeys, err error) {
	s, ok := suiteFor(cs.CipherSuite)
	if !ok {
		return nil, nil, errors.New("ktls: cipher suite without a kernel cipher")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch cs.Version {
	case tls.VersionTLS13:
		if k.clientTraffic == nil || k.serverTraffic == nil {
			return nil, nil, errNoSecrets
		}
		return tls13Keys(s, k.clientTraffic), tls13Keys(s, k.serverTraffic), nil
	case tls.VersionTLS12:
		if k.master == nil {
			return nil, nil, errNoSecrets
		}
		sr, err := serverRandom()
		if err != nil {
			return nil, nil, err
		}
		rx, tx = tls12Keys(s, k.master, k.clientRandom, sr)
		return rx, tx, nil
	}
	return nil, nil, errors.New("ktls: TLS version without kernel support")
}

// aead returns the AEAD for trial opening with these keys, or nil for
// ChaCha20-Poly1305, which trial.go checks with chachaVerify.
func (k *trafficKeys) aead() cipher.AEAD {
	if k.cipher == cipherChaCha20Poly1305 {
		return nil
	}
	b, err := aes.NewCipher(k.key)
	if err != nil {
		return nil
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil
	}
	return g
}

func (k *trafficKeys) clone() *trafficKeys {
	c := *k
	c.key, c.iv, c.secret = bytes.Clone(k.key), bytes.Clone(k.iv), bytes.Clone(k.secret)
	return &c
}
