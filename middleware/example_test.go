package middleware_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/go-chi/chi/v5"

	"github.com/fastpath-go/fastpath/middleware"
)

// A JSON request log from a chi router. The time and duration are removed
// here only to make the output reproducible.
func ExampleLogger() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "ttfb", "client.address":
				return slog.Attr{}
			}
			return a
		},
	}))

	r := chi.NewRouter()
	r.Use(middleware.Logger(logger))
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, "+chi.URLParam(r, "name"))
	})

	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/hello/gopher")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Close() // waits for the request, and so for its log record
	fmt.Println(string(body))
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"GET","url.path":"/hello/gopher","http.route":"/hello/{name}","http.response.status_code":200,"http.response.body.size":13,"user_agent.original":"Go-http-client/1.1","network.protocol.version":"1.1"}
	// hello, gopher
}
