package ktls

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Available reports whether this kernel takes TLS 1.3 with AES-128-GCM,
// what most sessions negotiate: InKernel, or FallbackNoULP or
// FallbackKernelCipher with the reason. It probes once per process.
func Available() Reason { return probe(tls.VersionTLS13, cipherAESGCM128).reason }

// Supports reports whether this kernel takes a session of the given TLS
// version and cipher suite (crypto/tls's constants): InKernel, or why not.
// The first call for a version and kernel cipher probes the kernel (see
// the package doc); later calls return the result.
func Supports(version, cipherSuite uint16) Reason {
	switch version {
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return FallbackVersion
	}
	s, ok := suiteFor(cipherSuite)
	if !ok {
		return FallbackCipher
	}
	return probe(version, s.cipher).reason
}

// support is what the kernel can do for one TLS version and cipher.
type support struct {
	reason Reason // InKernel when both directions work
	rekey  bool   // TLS_TX can be set again (TLS 1.3 KeyUpdate; Linux 6.14+)
	err    error  // what failed, for the log
}

type probeKey struct {
	version uint16
	cipher  kernelCipher
}

var probes sync.Map // probeKey -> *probeResult

type probeResult struct {
	once sync.Once
	s    support
}

// probe reports, once per process for each version and cipher, whether
// the kernel takes them: on a loopback TCP pair it attaches the tls ULP,
// sets TLS_TX on one end and TLS_RX on the other, and sends a record each
// way. Real connections then meet a refusal only in a rare case (memory
// pressure, a module unloaded since), which keeps the one unrecoverable
// case of the hand-off (TLS_TX in force, TLS_RX refused) rare too.
func probe(version uint16, c kernelCipher) support {
	v, _ := probes.LoadOrStore(probeKey{version, c}, &probeResult{})
	p := v.(*probeResult)
	p.once.Do(func() { p.s = runProbe(version, c) })
	return p.s
}

func runProbe(version uint16, c kernelCipher) support {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if ln, err = net.Listen("tcp", "[::1]:0"); err != nil {
			// No loopback to probe on: let each connection try.
			return support{reason: InKernel, err: err}
		}
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	b := <-accepted
	if err != nil || b == nil {
		if a != nil {
			a.Close()
		}
		if b != nil {
			b.Close()
		}
		return support{reason: InKernel, err: errors.New("ktls: probe: no loopback connection")}
	}
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)

	keys := &trafficKeys{version: version, cipher: c, key: make([]byte, c.keyLen()), iv: make([]byte, c.fixedIVLen(version))}
	for i := range keys.key {
		keys.key[i] = byte(i)
	}
	ra, _ := a.(syscall.Conn).SyscallConn()
	rb, _ := b.(syscall.Conn).SyscallConn()
	for _, rc := range []syscall.RawConn{ra, rb} {
		if err := rawControl(rc, setULP); err != nil {
			return support{reason: FallbackNoULP, err: err}
		}
	}
	for _, step := range []struct {
		rc  syscall.RawConn
		dir int
	}{{ra, tlsTX}, {rb, tlsRX}, {rb, tlsTX}, {ra, tlsRX}} {
		if err := rawControl(step.rc, func(fd int) error { return setKeys(fd, step.dir, keys, 0) }); err != nil {
			return support{reason: FallbackKernelCipher, err: err}
		}
	}
	for _, pair := range [][2]net.Conn{{a, b}, {b, a}} {
		if _, err := pair[0].Write([]byte("probe")); err != nil {
			return support{reason: FallbackKernelCipher, err: err}
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(pair[1], got); err != nil || string(got) != "probe" {
			return support{reason: FallbackKernelCipher, err: errors.Join(errors.New("ktls: probe record did not arrive intact"), err)}
		}
	}
	s := support{reason: InKernel}
	if version == tls.VersionTLS13 {
		s.rekey = rawControl(ra, func(fd int) error { return setKeys(fd, tlsTX, keys, 1) }) == nil
	}
	return s
}
