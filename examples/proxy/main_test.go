package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/examples/internal/exampletest"
	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
)

// TestProxy runs the example in front of a file server and checks its
// banner, that a download arrives whole and is logged, on the proxied route
// only, with every byte spliced, and the shutdown line.
func TestProxy(t *testing.T) {
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "big.bin", 3<<20)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	up := httptest.NewServer(handlers.FileServer(root))
	defer up.Close()

	var stdout, stderr testutil.LockedBuffer
	ex := exampletest.Start(t, example, []string{"-upstream", up.URL}, &stdout, &stderr)
	wantBanner := "fastpath: proxying to " + up.URL + " on " + ex.Base + " (-addr picks another address)\n" +
		"  metrics: " + ex.Base + "/metrics\n" +
		"  health:  " + ex.Base + "/healthz\n"
	if got := stderr.String(); got != wantBanner {
		t.Errorf("banner:\n%s\nwant:\n%s", got, wantBanner)
	}
	client := exampletest.OneConn()
	for _, path := range []string{"/big.bin", "/healthz", "/metrics"} {
		resp, err := client.Get(ex.Base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		if path == "/big.bin" && !bytes.Equal(body, data) {
			t.Fatalf("got %d bytes, want the file", len(body))
		}
	}
	client.CloseIdleConnections()
	ex.Stop(t) // graceful shutdown writes out the request's log record
	if !strings.Contains(stderr.String(), "\nfastpath: shut down in ") {
		t.Errorf("no shutdown line:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want one, the download's (health checks and scrapes are not on the recorded route):\n%s", len(lines), stdout.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["http.route"] != "/*" || rec["http.response.body.size"] != float64(3<<20) || rec["fastpath.response.splice.size"] != float64(3<<20) || rec["request_id"] == nil || rec["trace_id"] == nil {
		t.Errorf("record %v, want route /*, 3 MiB sent, all by splice, a request id and a trace id", rec)
	}
}

func TestProxyNeedsUpstream(t *testing.T) {
	err := app.Run(context.Background(), example, []string{"-addr", "127.0.0.1:0"}, io.Discard, io.Discard, nil)
	if err == nil || err.Error() != `-upstream "": want an http:// (or https://) URL` {
		t.Fatalf("run without -upstream: %v", err)
	}
}

func TestProxyHelp(t *testing.T) {
	exampletest.CheckHelp(t, "github.com/fastpath-go/fastpath/examples/proxy", "127.0.0.1:8082")
}
