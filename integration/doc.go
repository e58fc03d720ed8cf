// Package integration proves, end to end, that fastpath keeps file downloads
// on the kernel's zero-copy path, and gives you a test kit to prove the same
// of your own middleware stack.
//
// # The test kit
//
// CheckZeroCopy serves your handler on an httptest.Server whose connections
// are middleware.Listener's, which count the bytes sendfile(2) sent, makes one
// request, and reports the bytes the client received against the bytes the
// kernel sent by sendfile. It returns an error when the body did not go by
// sendfile, naming the reason fastpath's middleware diagnosed on the server
// (a middleware.CopyReason, and the Go type of the ResponseWriter wrapper to
// blame when there is one: "no_readfrom: a ResponseWriter wrapper hides
// io.ReaderFrom: *gzip.writer from example.com/gzip"), and says what the
// response was when it was no file at all (a redirect, a 304, an error
// status); AssertZeroCopy does the same for a testing.TB:
//
//	func TestDownloadsKeepSendfile(t *testing.T) {
//		req := httptest.NewRequest("GET", "/files/big.iso", nil)
//		integration.AssertZeroCopy(t, myRouter, req)
//	}
//
// net/http writes the first 512 bytes of a file itself before handing the rest
// to sendfile, so a response counts as kept when every byte past those went by
// sendfile; use a file larger than 512 bytes.
//
// # The end-to-end tests
//
// This package's tests run a server (chi or ServeMux, with Logger, Metrics,
// Tracing and Listener) as a child process under strace -f, for full
// downloads, ranges, multi-range, HEAD, 304, wrappers that hide or keep
// io.ReaderFrom, chunked responses, TLS and HTTP/2, and check that the body
// bytes the client received equal the bytes fastpath recorded and that the
// sendfile bytes fastpath recorded equal the sum of the sendfile(2) return
// values strace saw. They skip, saying why, only when strace is missing or
// ptrace is refused.
package integration
