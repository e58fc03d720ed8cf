package ktls

import (
	"context"
	"net"

	"github.com/fastpath-go/fastpath/internal/connreg"
)

// Reason says why a connection was not handed to kernel TLS. The empty
// Reason, InKernel, means it was.
type Reason string

// The reasons, a closed set.
const (
	// InKernel: the kernel seals and opens the connection's records
	// (TLS_TX and TLS_RX are in force); the connection is a *Conn.
	InKernel Reason = ""
	// FallbackALPN: the negotiated application protocol is not HTTP/1.1
	// (h2, say). net/http serves the *tls.Conn, HTTP/2 included.
	FallbackALPN Reason = "alpn"
	// FallbackVersion: TLS 1.0 or 1.1, which this package does not hand
	// over.
	FallbackVersion Reason = "tls_version"
	// FallbackCipher: a cipher suite with no kernel cipher (the CBC
	// suites); the kernel takes AES-128-GCM, AES-256-GCM and
	// ChaCha20-Poly1305.
	FallbackCipher Reason = "cipher_suite"
	// FallbackResumedTLS12: a resumed TLS 1.2 session. crypto/tls logs no
	// master secret for it, so its keys cannot be known; full TLS 1.2
	// handshakes and every TLS 1.3 session are handed over.
	FallbackResumedTLS12 Reason = "tls12_resumed"
	// FallbackKeys: the keys derived from the logged secrets did not
	// authenticate the records crypto/tls exchanged in the handshake, or
	// the handshake was too large to keep (1 MiB). Not expected; the
	// connection stays safe in crypto/tls.
	FallbackKeys Reason = "keys"
	// FallbackNotTCP: the accepted connection is not a TCP socket
	// (kernel TLS is a TCP upper layer protocol).
	FallbackNotTCP Reason = "not_tcp"
	// FallbackNoULP: the kernel has no tls upper layer protocol (the tls
	// module is not built or not loaded; see the package doc).
	FallbackNoULP Reason = "no_ulp"
	// FallbackKernelCipher: the kernel has kernel TLS but refused this TLS
	// version and cipher when probed (its crypto module is missing, or
	// the kernel predates the cipher).
	FallbackKernelCipher Reason = "kernel_cipher"
	// FallbackSetsockopt: attaching the tls ULP or setting TLS_TX failed
	// on this connection although the probe passed; nothing had changed
	// the socket's bytes, so crypto/tls serves it.
	FallbackSetsockopt Reason = "setsockopt"
	// FallbackOS: not Linux.
	FallbackOS Reason = "os"
)

// State is what NewListener did with a connection.
type State struct {
	// Kernel reports whether kernel TLS is in force.
	Kernel bool
	// Reason says why not, when Kernel is false.
	Reason Reason
}

// stater is implemented by *Conn and by the connection beneath a fallback
// *tls.Conn; the unexported method keeps the set to this package's types.
type stater interface {
	ktlsState() State
}

// StateOf returns the State of a connection NewListener's Accept returned,
// or of any wrapper around one that offers NetConn() net.Conn (a *tls.Conn
// does). It reports false for a connection NewListener did not make.
func StateOf(c net.Conn) (State, bool) {
	s, ok := connreg.Find[stater](c)
	if !ok {
		return State{}, false
	}
	return s.ktlsState(), true
}

// FromContext returns the State of the connection a request arrived on,
// found through the request context's local address (see
// internal/connreg): it works in either order of wrapping with
// middleware.Listener. It reports false when the request did not arrive
// through NewListener.
func FromContext(ctx context.Context) (State, bool) {
	return StateOf(connreg.FromContext(ctx))
}
