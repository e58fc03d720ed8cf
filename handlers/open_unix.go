//go:build unix

package handlers

import (
	"errors"
	"os"
	"syscall"
)

// openFlags opens files for reading without blocking on a FIFO (a FIFO opened
// for reading with no writer would otherwise hang the request; O_NONBLOCK has
// no effect on regular files or directories) and without ever acquiring a
// controlling terminal.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY

// isTransient reports whether err is a resource error rather than an answer
// about the file: those get 500, not 404, so nobody caches a 404 for a file
// that exists.
func isTransient(err error) bool {
	for _, e := range [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EIO, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
