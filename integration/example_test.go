package integration_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

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
	// Output:
	// <nil> 200 1048576 1048064
	// integration: sendfile sent 0 of 1048576 body bytes (0%): a ResponseWriter wrapper between the handler and net/http hides io.ReaderFrom
}
