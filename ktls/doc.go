// Package ktls serves HTTPS with Linux kernel TLS, so that net/http sends
// files with sendfile(2) over TLS as it does over plain TCP.
//
// crypto/tls encrypts in user space: net/http's response.ReadFrom meets a
// *tls.Conn, which has no ReadFrom, and every byte of a file is read into
// the process and encrypted there. With kernel TLS (the tls upper layer
// protocol of TCP) the kernel seals and opens the records: the TLS
// handshake still runs in crypto/tls, then the session's keys go to the
// socket, and reads and writes on it are plain system calls that carry
// application data. NewListener does that hand-off.
//
// # Use
//
//	ln, err := net.Listen("tcp", ":443")
//	...
//	srv.Serve(ktls.NewListener(middleware.Listener(ln), tlsConfig))
//
// Accept returns a *Conn when the kernel took the session, and the
// *tls.Conn otherwise, so net/http serves every connection, HTTP/2
// included (list "h2" in tlsConfig.NextProtos for it). StateOf (for a
// connection) and FromContext (for a request) say which, with the Reason
// when it fell back. Available and Supports say what this kernel takes.
//
// # Wrapping with middleware.Listener
//
// Either order works:
//
//   - ktls.NewListener(middleware.Listener(ln), cfg): the kernel TLS
//     connection sits above fastpath's counting connection, and its
//     ReadFrom calls that connection's ReadFrom, which counts what
//     sendfile sent. A fallback *tls.Conn is what net/http sees, so it
//     sets r.TLS and serves HTTP/2 itself.
//   - middleware.Listener(ktls.NewListener(ln, cfg)): the counting
//     connection wraps what Accept returned; its ReadFrom hands the file to
//     (*Conn).ReadFrom, which hands it to the socket.
//
// Conn.ConnectionState has the session's state as crypto/tls reported it.
// net/http sets r.TLS from it when the *Conn is the connection it serves
// (the first order); beneath middleware.Listener's connection, net/http
// leaves r.TLS nil and fastpath's middleware fills it in.
//
// # What goes to the kernel, and what falls back
//
// A session goes to the kernel when it negotiated HTTP/1.1 (or no ALPN),
// TLS 1.2 or 1.3, and AES-128-GCM, AES-256-GCM or ChaCha20-Poly1305, and
// the kernel takes that version and cipher. Everything else is served by
// crypto/tls, with a Reason: h2 and other ALPN protocols
// (FallbackALPN: HTTP/2's framing is user space's), TLS 1.0/1.1
// (FallbackVersion), CBC suites (FallbackCipher), resumed TLS 1.2 sessions
// (FallbackResumedTLS12: crypto/tls logs no secret for them, see below), a
// kernel without the tls ULP (FallbackNoULP) or without the cipher
// (FallbackKernelCipher), a socket option that failed (FallbackSetsockopt),
// a connection that is not TCP (FallbackNotTCP), keys that did not check
// out (FallbackKeys), and other systems (FallbackOS).
//
// # Kernel requirements
//
// Linux with CONFIG_TLS and the tls module loaded (modprobe tls; TLS 1.3
// needs 5.1+, AES-256-GCM 5.2+, ChaCha20-Poly1305 5.11+), and the kernel's
// crypto for the cipher (gcm(aes), rfc7539(chacha20,poly1305)), which a
// normal system loads on demand. /proc/sys/net/ipv4/tcp_available_ulp lists
// "tls" when the module is in. The first session of each version and
// cipher probes the kernel on a loopback TCP pair of its own (both
// directions, one record each way), once per process. TLS_TX_ZEROCOPY_RO
// and TLS_RX_EXPECT_NO_PAD are left off: the first only changes anything
// for TLS offload in a NIC (software kernel TLS writes ciphertext to its
// own buffers), and the second saves a copy on the receive side, which
// serving files barely uses, at the cost of decrypting twice whenever a
// client pads its records.
//
// # Security: the record-layer invariants
//
// The hand-off is correct at the record layer or does not happen. Each
// invariant is named where the code relies on it, with the test that fails
// when it breaks; the tests that need the kernel run in a QEMU guest
// (internal/vmtest, TestGuest) on machines without kernel TLS.
//
//   - Keys: the user's *tls.Config keeps its meaning. A clone per
//     connection (through GetConfigForClient, after the user's own) carries
//     a KeyLogWriter that keeps that connection's secrets and forwards every
//     line to the user's KeyLogWriter, if any. TLS 1.3 keys come from the
//     traffic secrets by HKDF-Expand-Label (RFC 8446 7.1, 7.3); TLS 1.2 keys
//     from the master secret by the PRF (RFC 5246 5, 6.3) with the
//     ServerHello's random. Session tickets stay on.
//   - Sequence numbers: the kernel continues each direction's numbering
//     where crypto/tls stopped. crypto/tls has already sent records under
//     the server's application key (TLS 1.3 session tickets; the TLS 1.2
//     Finished) and read the client's (the TLS 1.2 Finished). The
//     connection beneath crypto/tls keeps every record of the handshake,
//     and the records under each key are counted by AEAD checks at
//     sequence numbers 0, 1, 2...: exact, not inferred from crypto/tls's
//     schedule. For TLS 1.2 both Finished messages must check out, which
//     also verifies the derived keys. TestCountRecords, TestDownloads
//     (tickets on and off).
//   - Record boundary: during the handshake the connection beneath
//     crypto/tls returns at most the rest of the current record, so
//     crypto/tls holds no byte past the client's Finished, and the kernel
//     receives from the first record after it. TestRecordBoundary,
//     TestPipelined.
//   - No plaintext, no double encryption: TCP_ULP, then TLS_TX, then
//     TLS_RX. A plain write happens only once TLS_TX is in force; any
//     failure before falls back to crypto/tls with the socket untouched;
//     TLS_RX failing after TLS_TX closes the connection with a close_notify
//     the kernel seals. TestHandOffFailures, and the relay in TestDownloads
//     that sees no plaintext of any served file.
//   - After the hand-off: reads use recvmsg(2) with TLS_GET_RECORD_TYPE. A
//     client close_notify ends reads with io.EOF; any other alert, a
//     record that fails authentication (bad_record_mac is sent) or any
//     unexpected record ends the connection; Close and CloseWrite send
//     close_notify through the kernel (sendmsg with TLS_SET_RECORD_TYPE).
//     A client that resets the connection during ReadFrom makes it fail
//     with ECONNRESET or EPIPE, as on plain TCP, though the kernel's
//     sendfile can report the file sent (Linux 6.1, with a read in flight
//     that takes the socket's error): ReadFrom checks the TCP state after
//     sending, and a failed send fails every later one. Write does not
//     check (it would cost a system call per write), so a Write the kernel
//     took after a reset may report success. TestClose,
//     TestResetDuringSendfile, TestClientLeavesRecords.
//   - KeyUpdate: a kernel that can re-key (Linux 6.14+) takes the client's
//     next key, and when asked the server sends its own KeyUpdate and moves
//     to its next key; an older kernel cannot, so Read returns ErrKeyUpdate
//     and the connection ends with close_notify under the old key, never
//     reading a record under a stale one. TestKeyUpdate (on 6.1; the
//     re-keying path has not run on a kernel that supports it).
//   - Record limits: AES-GCM keys are retired after 2^23 records, below
//     RFC 8446 5.5's 2^24.5: the server re-keys (TLS 1.3, re-keying kernel)
//     or sends close_notify, and Write and ReadFrom return ErrRecordLimit.
//     The kernel's rec_seq (getsockopt TLS_TX) is read when the bytes sent
//     since the last reading could have made that many records.
//     TestRecordLimit.
//
// Conn has no SyscallConn, so no byte reaches the socket around these
// checks.
//
// # Handshakes
//
// Accept never waits on a handshake: each runs in its own goroutine,
// bounded by WithHandshakeTimeout (DefaultHandshakeTimeout), and Accept
// returns connections as their handshakes finish. A failed handshake is
// logged at debug level (WithLogger). Close ends the handshakes in progress
// and closes the connections not yet accepted; no goroutine is left.
package ktls
