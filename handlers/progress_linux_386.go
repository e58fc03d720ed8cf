package handlers

import "net/http"

// connProgress returns nil: linux/386's syscall package has no direct
// getsockopt, so the connection is not measured, and watchSend falls back
// to the file's offset.
func connProgress(*http.Request) func() (int64, bool) { return nil }
