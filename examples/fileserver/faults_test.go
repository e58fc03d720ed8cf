package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// rawGet sends a GET for path with a request id on a fresh connection and
// returns the connection and the response (its body not yet read).
func rawGet(t *testing.T, base, path, id string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n", path, id)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp
}

// waitLog reads the example's output until the request record with the
// given id, and returns it.
func waitLog(t *testing.T, e *child, id string) map[string]any {
	t.Helper()
	var rec map[string]any
	e.stdout.waitFor(t, "log record for request "+id, func(out string) bool {
		for _, m := range parseLogs(t, out) {
			if m["request_id"] == id && m["msg"] == "http request" {
				rec = m
				return true
			}
		}
		return false
	})
	return rec
}

func num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

// TestFaults runs the example server and injects faults one at a time,
// checking what is recorded and that no goroutine is left behind. The send
// timeout is left at its default (a minute): no client here is slow on
// purpose, and a busy machine must not make one look stalled
// (TestSendTimeout covers stalled readers).
func TestFaults(t *testing.T) {
	const size = 64 << 20
	root := t.TempDir()
	data := testutil.WriteRandomFile(t, root, "big.bin", size)
	e := startExample(t, root, "-read-header-timeout", "1s")
	baseline := e.goroutines(t)

	t.Run("client disconnects mid-sendfile", func(t *testing.T) {
		c, resp := rawGet(t, e.base, "/files/big.bin", "disconnect")
		if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		m := waitLog(t, e, "disconnect")
		if m["error.type"] != "client_aborted" || m["level"] != "INFO" {
			t.Errorf("record %v, want client_aborted at INFO", m)
		}
		if b, sf := num(m, "http.response.body.size"), num(m, "fastpath.response.sendfile.size"); b < 1<<20 || b >= size || sf != b-512 {
			t.Errorf("body %d, sendfile %d: want the bytes that got out, all but 512 by sendfile", b, sf)
		}
	})

	t.Run("client never finishes its headers", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /files/big.bin HTTP/1.1\r\nHost: x\r\n") // and never the blank line
		// The read header timeout closes the connection without a response;
		// the generous deadline only keeps a broken server from hanging
		// the test.
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		b, err := io.ReadAll(c)
		if err != nil || len(b) != 0 {
			t.Fatalf("read %q and %v: want the server to close the connection without a response", b, err)
		}
		e.stdout.waitFor(t, "record of the connection cut off before its request", func(out string) bool {
			return strings.Contains(out, `"msg":"connection closed before a complete request"`)
		})
	})

	t.Run("file truncated while served", func(t *testing.T) {
		p := filepath.Join(root, "trunc.bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, resp := rawGet(t, e.base, "/files/trunc.bin", "truncated")
		defer c.Close()
		got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 8<<20); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(resp.Body)
		got = append(got, rest...)
		if err == nil || int64(len(got)) >= size {
			t.Fatalf("client read %d bytes and err %v: a truncated file must not look complete", len(got), err)
		}
		if !bytes.Equal(got, data[:len(got)]) {
			t.Error("the bytes that were sent are not the file's")
		}
		m := waitLog(t, e, "truncated")
		if m["error.type"] != "short_body" || m["level"] != "ERROR" || num(m, "http.response.body.size") != int64(len(got)) {
			t.Errorf("record %v, want short_body at ERROR with the %d bytes sent", m, len(got))
		}
	})

	t.Run("file replaced while served", func(t *testing.T) {
		p := filepath.Join(root, "replaced.bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, resp := rawGet(t, e.base, "/files/replaced.bin", "replaced")
		defer c.Close()
		got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		tmp := p + ".new"
		if err := os.WriteFile(tmp, []byte("new content"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(append(got, rest...), data) {
			t.Fatalf("client got %d bytes (%v): want the whole old file, consistent", len(got)+len(rest), err)
		}
		if m := waitLog(t, e, "replaced"); m["error.type"] != nil || num(m, "http.response.body.size") != size {
			t.Errorf("record %v, want a complete response", m)
		}
	})

	if n := e.settle(t); n > baseline {
		t.Errorf("%d goroutines after the faults, %d before", n, baseline)
	}
	e.stop(t)
}

// TestSendTimeout stalls a reader mid-download: the example's send timeout
// cuts it off, the client sees the body cut short, and the record says so.
func TestSendTimeout(t *testing.T) {
	const size = 64 << 20
	root := t.TempDir()
	testutil.WriteRandomFile(t, root, "big.bin", size)
	e := startExample(t, root, "-send-timeout", "2s")
	baseline := e.goroutines(t)

	c, resp := rawGet(t, e.base, "/files/big.bin", "stall")
	defer c.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	m := waitLog(t, e, "stall") // the send timeout ends it while we do not read
	if m["error.type"] != "send_timeout" || m["level"] != "WARN" || num(m, "http.response.body.size") >= size {
		t.Errorf("record %v, want a short body cut by send_timeout, at WARN", m)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Errorf("client read %d more bytes and a clean end after being cut off", n)
	}
	if n := e.settle(t); n > baseline {
		t.Errorf("%d goroutines after the stall, %d before", n, baseline)
	}
	e.stop(t)
}

// TestShutdownDuringDownloads sends SIGTERM while downloads are in flight:
// the ones whose clients keep reading finish whatever the machine's speed
// (the shutdown timeout is far beyond any of them), a stalled one holds the
// shutdown until its client leaves, and the process then exits cleanly.
func TestShutdownDuringDownloads(t *testing.T) {
	const size = 32 << 20
	root := t.TempDir()
	data := testutil.WriteRandomFile(t, root, "big.bin", size)
	e := startExample(t, root, "-shutdown-timeout", "10m")

	var wg sync.WaitGroup
	results := make([]error, 4)
	started := make(chan struct{}, len(results))
	resume := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, resp := rawGet(t, e.base, "/files/big.bin", fmt.Sprintf("inflight-%d", i))
			defer c.Close()
			// Read a little, then pause until SIGTERM has been sent: the
			// socket buffers fill and the handler waits in sendfile, so the
			// download is in flight when the shutdown starts.
			head := make([]byte, 1<<20)
			_, err := io.ReadFull(resp.Body, head)
			started <- struct{}{}
			<-resume
			if err != nil {
				results[i] = err
				return
			}
			rest, err := io.ReadAll(resp.Body)
			if err != nil {
				results[i] = err
			} else if got := append(head, rest...); !bytes.Equal(got, data) {
				results[i] = fmt.Errorf("got %d bytes, not the file", len(got))
			}
		}()
	}
	stalled, stalledResp := rawGet(t, e.base, "/files/big.bin", "stalled")
	if _, err := io.CopyN(io.Discard, stalledResp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	for range results {
		<-started
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	close(resume)
	wg.Wait()
	// Every steady download is complete, and the stalled one still holds
	// the server open; its client now gives up.
	stalled.(*net.TCPConn).SetLinger(0)
	stalled.Close()
	e.wait(t)
	for i, err := range results {
		if err != nil {
			t.Errorf("in-flight download %d: %v", i, err)
		}
	}
	recs := e.requestLogs(t)
	for i := range results {
		if m := recs[fmt.Sprintf("inflight-%d", i)]; m == nil || m["error.type"] != nil || num(m, "http.response.body.size") != size {
			t.Errorf("in-flight download %d recorded as %v, want complete", i, m)
		}
	}
	if m := recs["stalled"]; m == nil || m["error.type"] != "client_aborted" {
		t.Errorf("stalled download recorded as %v, want client_aborted", m)
	}
	checkShutdownLines(t, e.stderr.String(),
		"fastpath: shutting down: draining 5 in-flight requests, for at most 10m0s (-shutdown-timeout)",
		`fastpath: shut down in \S+: 5 in-flight requests drained`)
}

// checkShutdownLines checks the two lines the example prints on stderr at
// shutdown: the first as it begins, the second, a regular expression, once
// it is done.
func checkShutdownLines(t *testing.T, stderr, begins, done string) {
	t.Helper()
	if !strings.Contains(stderr, "\n"+begins+"\n") {
		t.Errorf("stderr lacks %q:\n%s", begins, stderr)
	}
	if !regexp.MustCompile(`(?m)^` + done + `$`).MatchString(stderr) {
		t.Errorf("stderr lacks a line matching %q:\n%s", done, stderr)
	}
}

// TestShutdownTimeout sends SIGTERM while a download is stalled: when the
// shutdown timeout runs out its connection is closed, it is recorded as
// aborted, and the process exits cleanly.
func TestShutdownTimeout(t *testing.T) {
	const size = 32 << 20
	root := t.TempDir()
	testutil.WriteRandomFile(t, root, "big.bin", size)
	e := startExample(t, root, "-shutdown-timeout", "1s")
	stalled, resp := rawGet(t, e.base, "/files/big.bin", "stalled")
	defer stalled.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	e.wait(t)
	// The server closed the connection: its own doing, not the client's.
	if m := e.requestLogs(t)["stalled"]; m == nil || m["error.type"] != "write_error" || num(m, "http.response.body.size") >= size {
		t.Errorf("stalled download recorded as %v, want write_error and short", m)
	}
	if !strings.Contains(e.stdout.String(), `"msg":"shutdown timeout: closing the connections still open"`) {
		t.Errorf("no record of the shutdown timeout:\n%s", e.stdout.String())
	}
	checkShutdownLines(t, e.stderr.String(),
		"fastpath: shutting down: draining 1 in-flight request, for at most 1s (-shutdown-timeout)",
		`fastpath: shut down in \S+: 0 in-flight requests drained, 1 cut off at the 1s -shutdown-timeout`)
}
