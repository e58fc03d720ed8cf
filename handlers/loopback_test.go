package handlers

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fastpath-go/fastpath/internal/zerocopy"
)

// sendfileServer serves h on a loopback listener whose connections count
// the bytes sendfile(2) sent, and reports that count for each request.
func sendfileServer(t *testing.T, h http.Handler) (*httptest.Server, <-chan int64) {
	t.Helper()
	counts := make(chan int64, 16)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := zerocopy.FromContext(r.Context())
		if c == nil {
			t.Error("request did not come through a zerocopy.Conn")
			h.ServeHTTP(w, r)
			return
		}
		before := c.Sendfile()
		h.ServeHTTP(w, r)
		counts <- c.Sendfile() - before
	}))
	ts.Listener = zerocopy.Listener{Listener: ts.Listener}
	ts.Start()
	// Send Accept-Encoding only when a test asks for it, and never
	// decompress: the tests compare raw bytes.
	ts.Client().Transport.(*http.Transport).DisableCompression = true
	t.Cleanup(ts.Close)
	return ts, counts
}

// TestLoopbackSendfile proves, on a real TCP connection, that bodies go out
// by sendfile(2): all of them except the first 512 bytes of a response,
// which net/http always copies with write(2) before it switches to ReadFrom.
func TestLoopbackSendfile(t *testing.T) {
	dir := t.TempDir()
	const mib = 1 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), 3*mib/16)
	if err := os.WriteFile(filepath.Join(dir, "large.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	encoded := bytes.Repeat([]byte("compressed bytes"), mib/16)
	if err := os.WriteFile(filepath.Join(dir, "large.bin.gz"), encoded, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	tests := []struct {
		name        string
		handler     http.Handler
		hdr         []string
		wantCode    int
		want        []byte // body for non-multipart responses
		sent        int64  // payload bytes
		minSendfile int64  // at least this many by sendfile
	}{
		{"whole file", FileServer(root), nil, 200, content, int64(len(content)), int64(len(content)) - 512},
		{"single range", FileServer(root), []string{"Range", "bytes=1000-2000999"}, 206, content[1000:2001000], 2000000, 2000000 - 512},
		{"three ranges", FileServer(root), []string{"Range", "bytes=0-1048575,1048576-2097151,2097152-"}, 206, nil, 3 * mib, 3*mib - 512},
		{"sidecar", FileServer(root), []string{"Accept-Encoding", "gzip"}, 200, encoded, int64(len(encoded)), int64(len(encoded)) - 512},
		{"sidecar ranges", FileServer(root), []string{"Accept-Encoding", "gzip", "Range", "bytes=0-99999,500000-"}, 206, nil, 100000 + int64(len(encoded)) - 500000, 100000 + int64(len(encoded)) - 500000 - 512},
		{"ServeContent ranges", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(filepath.Join(dir, "large.bin"))
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			ServeContent(w, r, "large.bin", fixedTime, f)
		}), []string{"Range", "bytes=0-1048575,2097152-"}, 206, nil, 2 * mib, 2*mib - 512},
		// The reference: net/http's multi-range path loses sendfile.
		{"net/http three ranges", http.FileServer(http.Dir(dir)), []string{"Range", "bytes=0-1048575,1048576-2097151,2097152-"}, 206, nil, 3 * mib, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, counts := sendfileServer(t, tt.handler)
			req, err := http.NewRequest("GET", ts.URL+"/large.bin", nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantCode)
			}
			if res.TransferEncoding != nil || res.ContentLength != int64(len(body)) {
				t.Errorf("Transfer-Encoding %v, Content-Length %d, body %d bytes", res.TransferEncoding, res.ContentLength, len(body))
			}
			if tt.want != nil && !bytes.Equal(body, tt.want) {
				t.Errorf("body differs")
			}
			if tt.want == nil {
				wantContent := content
				if res.Header.Get("Content-Encoding") == "gzip" {
					wantContent = encoded
				}
				checkMultipart(t, response{status: res.StatusCode, header: res.Header, body: body}, wantContent, "application/octet-stream")
			}
			sent := <-counts
			if sent < tt.minSendfile || sent > tt.sent {
				t.Errorf("sendfile sent %d bytes, want %d to %d", sent, tt.minSendfile, tt.sent)
			}
			if tt.minSendfile == 0 && sent != 0 {
				t.Errorf("reference sent %d bytes by sendfile; expected none", sent)
			}
			t.Logf("Content-Length %s, sendfile %d of %d payload bytes", strconv.FormatInt(res.ContentLength, 10), sent, tt.sent)
		})
	}
}
