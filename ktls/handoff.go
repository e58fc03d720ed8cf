package ktls

import (
	"crypto/tls"
	"net"
)

// handOff decides what Accept returns for a connection whose handshake is
// done: a *Conn in kernel TLS, or tc itself with the reason it falls back
// recorded on h. An error means the connection was closed instead (see
// kernelHandOff for the one case).
func handOff(h *hsConn, tc *tls.Conn) (net.Conn, error) {
	cs := tc.ConnectionState()
	reason := eligible(&cs)
	if reason == InKernel {
		var c *Conn
		var err error
		c, reason, err = kernelHandOff(h, &cs)
		if err != nil {
			h.endHandshake()
			return nil, err
		}
		if c != nil {
			h.endHandshake()
			return c, nil
		}
	}
	h.reason.Store(reason)
	h.endHandshake()
	return tc, nil
}

// eligible returns why a session cannot go to the kernel whatever the
// kernel supports, or InKernel.
func eligible(cs *tls.ConnectionState) Reason {
	switch cs.NegotiatedProtocol {
	case "", "http/1.1":
	default:
		return FallbackALPN
	}
	switch cs.Version {
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return FallbackVersion
	}
	if _, ok := suiteFor(cs.CipherSuite); !ok {
		return FallbackCipher
	}
	if cs.Version == tls.VersionTLS12 && cs.DidResume {
		return FallbackResumedTLS12
	}
	return InKernel
}
