package proxy_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"

	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/proxy"
)

func ExampleReverseProxy() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	defer upstream.Close()
	target, err := url.Parse(upstream.URL)
	if err != nil {
		log.Fatal(err)
	}

	tr := &proxy.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	h := proxy.ReverseProxy(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: tr,
	})

	// The request log, cut to the sizes: the body went by splice(2).
	keep := []string{"http.response.status_code", "http.response.body.size", middleware.SpliceSizeKey}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if !slices.Contains(keep, a.Key) {
				return slog.Attr{}
			}
			return a
		},
	}))
	srv := httptest.NewUnstartedServer(middleware.Logger(logger)(h))
	srv.Listener = middleware.Listener(srv.Listener) // counts the spliced bytes
	srv.Start()

	res, err := http.Get(srv.URL + "/greeting")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	srv.Close() // waits for the handler, and so for its log line
	fmt.Printf("%d %q\n", res.StatusCode, body)
	// Output:
	// http.response.status_code=200 http.response.body.size=20 fastpath.response.splice.size=20
	// 200 "hello from /greeting"
}
