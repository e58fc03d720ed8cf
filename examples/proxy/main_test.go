package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
)

// TestProxy runs the example in front of a file server and checks that a
// download arrives whole and is logged with every byte spliced.
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

	ctx, cancel := context.WithCancel(context.Background())
	var stdout testutil.LockedBuffer
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-upstream", up.URL}, &stdout, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Get("http://" + addr.String() + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("got %d bytes (%v), want the file", len(body), err)
	}
	client.CloseIdleConnections()
	cancel() // graceful shutdown waits for the request's log record
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no shutdown in a minute")
	}
	var rec map[string]any
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["http.response.body.size"] != float64(3<<20) || rec["fastpath.response.splice.size"] != float64(3<<20) {
		t.Errorf("record %v, want 3 MiB sent, all by splice", rec)
	}
}

func TestProxyNeedsUpstream(t *testing.T) {
	if err := run(context.Background(), nil, io.Discard, io.Discard, nil); err == nil {
		t.Fatal("run without -upstream succeeded")
	}
}
