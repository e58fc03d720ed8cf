package integration_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/integration"
	"github.com/fastpath-go/fastpath/middleware"
)

// Check that a chi router with fastpath's middleware still serves files by
// sendfile(2). In a test, integration.AssertZeroCopy(t, r, req) does the same
// and fails the test with the reason.
func ExampleCheckZeroCopy() {
	dir, _ := os.MkdirTemp("", "files")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "video.mp4"), make([]byte, 1<<20), 0o644)

	r := chi.NewRouter()
	r.Use(middleware.Logger(slog.New(slog.DiscardHandler)))
	r.Get("/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(chi.URLParam(r, "name"))))
	})

	rep, err := integration.CheckZeroCopy(r, httptest.NewRequest("GET", "/files/video.mp4", nil))
	fmt.Println(err, rep.Status, rep.BodyBytes, rep.SendfileBytes)

	// Wrapping the ResponseWriter naively loses the fast path; the kit says so.
	naive := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.ServeHTTP(struct{ http.ResponseWriter }{w}, req)
	})
	_, err = integration.CheckZeroCopy(naive, httptest.NewRequest("GET", "/files/video.mp4", nil))
	fmt.Println(err)

	// A request the router does not serve is reported as what it is.
	_, err = integration.CheckZeroCopy(r, httptest.NewRequest("GET", "/video.mp4", nil))
	fmt.Println(err)
	// Output:
	// <nil> 200 1048576 1048064
	// integration: sendfile sent 0 of 1048576 body bytes (0%): a ResponseWriter wrapper between the handler and net/http hides io.ReaderFrom
	// integration: the handler answered 404 Not Found (a 19-byte body), so there was no file to send; check the request's method and path against the handler's routes
}

// Multi-range requests stay on the fast path with handlers.FileServer: the
// kit counts the parts' bytes, since the part headers always go by write(2).
func ExampleCheckZeroCopy_multiRange() {
	dir, _ := os.MkdirTemp("", "files")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "video.mp4"), make([]byte, 1<<20), 0o644)
	root, _ := os.OpenRoot(dir)
	defer root.Close()

	req := httptest.NewRequest("GET", "/video.mp4", nil)
	req.Header.Set("Range", "bytes=0-99999,500000-599999")
	rep, err := integration.CheckZeroCopy(handlers.FileServer(root), req)
	fmt.Println(err, rep.Status, rep.MinSendfileBytes, rep.SendfileBytes)
	// Output:
	// <nil> 206 199488 199488
}
