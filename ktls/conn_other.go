//go:build !linux

package ktls

import (
	"crypto/tls"
	"errors"
	"io"
)

// Kernel TLS is Linux's: elsewhere kernelHandOff never makes a Conn, and
// these methods only complete the type.

var errNotLinux = errors.New("ktls: kernel TLS is Linux only")

// Read is unsupported outside Linux.
func (c *Conn) Read(p []byte) (int, error) { return 0, errNotLinux }

// Write is unsupported outside Linux.
func (c *Conn) Write(p []byte) (int, error) { return 0, errNotLinux }

// ReadFrom is unsupported outside Linux.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) { return 0, errNotLinux }

// Close closes the connection beneath.
func (c *Conn) Close() error { return c.inner.Close() }

// CloseWrite is unsupported outside Linux.
func (c *Conn) CloseWrite() error { return errNotLinux }

func kernelHandOff(h *hsConn, cs *tls.ConnectionState) (*Conn, Reason, error) {
	return nil, FallbackOS, nil
}

// Available reports FallbackOS: kernel TLS is Linux's.
func Available() Reason { return FallbackOS }

// Supports reports FallbackOS: kernel TLS is Linux's.
func Supports(version, cipherSuite uint16) Reason { return FallbackOS }
