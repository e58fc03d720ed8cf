//go:build !unix

package handlers

import (
	"net/http"
	"os"
	"time"
)

// watchSend does nothing outside Unix: there, reading a file's offset waits
// for a transfer in progress to finish, and the connection cannot be
// measured, so progress cannot be watched, and a fixed deadline would cut
// off long downloads.
func watchSend(http.ResponseWriter, *http.Request, *os.File, int64, time.Duration) (stop func()) {
	return func() {}
}
