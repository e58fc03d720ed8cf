// Command servemux is examples/fileserver on net/http's ServeMux with Go
// 1.22 patterns instead of chi, with the same flags and routes:
//
//	go run ./examples/servemux [-addr 127.0.0.1:8080] [-root .] [-list] [-send-timeout 1m]
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/fastpath-go/fastpath/examples/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "servemux:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; ready, when not nil, learns the address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	return app.Run(ctx, "servemux", args, stdout, stderr, ready, func(env app.Env) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", app.Healthz)
		mux.Handle("GET /metrics", env.Metrics)
		mux.Handle("/files/", http.StripPrefix("/files", env.Files))

		// The middleware wraps the mux from outside; the route is read from
		// the pattern the mux matched.
		var h http.Handler = mux
		for i := len(env.Middleware) - 1; i >= 0; i-- {
			h = env.Middleware[i](h)
		}
		return h
	})
}
