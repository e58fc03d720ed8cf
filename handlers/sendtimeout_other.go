//go:build !linux

package handlers

import (
	"net/http"
	"os"
	"time"
)

// watchSend does nothing outside Linux, as WithSendTimeout says: the
// connection is not measured there, and the file's offset does not show
// progress during a body (Go's sendfile on the BSDs, macOS and Solaris moves
// it only once the whole call returns; on Windows, reading it waits for a
// transfer in progress), and a fixed deadline would cut off long downloads.
func watchSend(http.ResponseWriter, *http.Request, *os.File, int64, time.Duration) (stop func()) {
	return func() {}
}
