//go:build !unix

package handlers

import "os"

// openFlags opens files for reading.
const openFlags = os.O_RDONLY

// isTransient reports whether err is a resource error rather than an answer
// about the file. Outside Unix every error answers 404.
func isTransient(error) bool { return false }
