package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestReverseProxySniffsLikeReverseProxy checks that a response without a
// Content-Type reaches the client with the type net/http sniffs from its
// first 512 bytes, as httputil.ReverseProxy's does, whether the body is
// spliced (with Listener or without) or copied, small or large; that a
// response with one keeps it; and that a spliced body's bytes after the
// first 512 still go by splice.
func TestReverseProxySniffsLikeReverseProxy(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 1<<20)...)
	html := []byte("<!DOCTYPE html><title>hi</title>")
	tests := []struct {
		name     string
		body     []byte
		ctype    []string // the upstream's Content-Type values; nil: none
		encoding string   // the upstream's Content-Encoding
		wantType string   // "": none
	}{
		{name: "small html", body: html, wantType: "text/html; charset=utf-8"},
		{name: "small text", body: []byte("just words"), wantType: "text/plain; charset=utf-8"},
		{name: "large png", body: png, wantType: "image/png"},
		{name: "large binary", body: bytes.Repeat([]byte{0, 1, 2, 3}, 300000), wantType: "application/octet-stream"},
		{name: "exactly 512 bytes", body: bytes.Repeat([]byte("x"), 512), wantType: "text/plain; charset=utf-8"},
		{name: "typed by the upstream", body: png, ctype: []string{"application/x-custom"}, wantType: "application/x-custom"},
		// net/http does not sniff an encoded body.
		{name: "encoded", body: png, encoding: "gzip", wantType: ""},
	}
	type path struct {
		name     string
		o        proxyOpts
		wantBody string // fastpath.proxy.body
	}
	paths := []path{
		{name: "spliced", wantBody: "splice"},
		{name: "spliced without Listener", o: proxyOpts{noListener: true}, wantBody: "splice"},
		{name: "copied", o: proxyOpts{inner: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(hider{w}, r) })
		}}, wantBody: "copy"},
	}
	for _, tt := range tests {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = tt.ctype // nil: sent without one, unsniffed
			if tt.encoding != "" {
				w.Header().Set("Content-Encoding", tt.encoding)
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(tt.body)))
			w.Write(tt.body)
		}))
		t.Cleanup(up.Close)
		u, _ := url.Parse(up.URL)
		peer := httptest.NewServer(&httputil.ReverseProxy{
			Rewrite:  func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			ErrorLog: discardLog,
		})
		t.Cleanup(peer.Close)
		// Asking for gzip keeps the peer's transport from asking for it,
		// and from decoding the "encoded" case's body.
		req, _ := http.NewRequest("GET", peer.URL, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		peerBody, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		peerType := resp.Header.Values("Content-Type")
		if strings.Join(peerType, ",") != tt.wantType || !bytes.Equal(peerBody, tt.body) {
			t.Fatalf("%s: httputil.ReverseProxy answers Content-Type %q with %d bytes; the test expects %q with %d",
				tt.name, peerType, len(peerBody), tt.wantType, len(tt.body))
		}
		for _, p := range paths {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				e := newProxyEnv(t, up.URL, p.o)
				resp, body, err := get(t, e, "/", "Accept-Encoding", "gzip")
				if err != nil {
					t.Fatal(err)
				}
				e.wait(1)
				if got := resp.Header.Values("Content-Type"); fmt.Sprint(got) != fmt.Sprint(peerType) {
					t.Errorf("Content-Type %q, httputil.ReverseProxy's %q", got, peerType)
				}
				if !bytes.Equal(body, tt.body) {
					t.Errorf("got %d bytes that differ from the %d sent", len(body), len(tt.body))
				}
				rec, span := e.last()
				if got := spanAttr(span, BodyKey); got != p.wantBody {
					t.Errorf("%s = %q, want %q", BodyKey, got, p.wantBody)
				}
				// net/http writes the first 512 bytes itself only to
				// sniff; the rest is spliced.
				want := int64(len(tt.body))
				switch {
				case p.wantBody == "copy":
					want = 0
				case tt.ctype == nil && tt.encoding == "":
					want = max(want-512, 0)
				}
				if got := num(rec, "fastpath.response.splice.size"); p.o.noListener {
					if got != -1 {
						t.Errorf("recorded splice %d without Listener, want none", got)
					}
				} else if got != want {
					t.Errorf("recorded splice %d, want %d", got, want)
				}
			})
		}
	}
}
