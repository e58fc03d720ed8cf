package handlers

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// discardWriter is a minimal ResponseWriter that, like net/http's, has
// ReadFrom, so the benchmarks measure the handlers and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(io.Discard, r)
}

func benchDir(b *testing.B) (string, *os.Root) {
	b.Helper()
	dir := b.TempDir()
	small := bytes.Repeat([]byte("small file body\n"), 64) // 1 KiB
	files := map[string][]byte{
		"small.txt":    small,
		"small.txt.gz": small[:300],
		"big.bin":      bigContent,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { root.Close() })
	return dir, root
}

func runHandler(b *testing.B, h http.Handler, r *http.Request, wantCode int) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != wantCode {
			b.Fatalf("status %d, want %d", w.code, wantCode)
		}
	}
}

// BenchmarkSmallFileGET compares a 1 KiB GET through FileServer with
// net/http's http.FileServer.
func BenchmarkSmallFileGET(b *testing.B) {
	dir, root := benchDir(b)
	b.Run("fastpath", func(b *testing.B) {
		runHandler(b, FileServer(root), httptest.NewRequest("GET", "/small.txt", nil), 200)
	})
	b.Run("fastpath-gzip-sidecar", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/small.txt", nil)
		r.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		runHandler(b, FileServer(root), r, 200)
	})
	b.Run("net-http-FileServer", func(b *testing.B) {
		runHandler(b, http.FileServer(http.Dir(dir)), httptest.NewRequest("GET", "/small.txt", nil), 200)
	})
}

// BenchmarkMultiRangeGET compares a three-range GET of a 64 KiB file through
// ServeContent with net/http's http.ServeContent.
func BenchmarkMultiRangeGET(b *testing.B) {
	dir, _ := benchDir(b)
	path := filepath.Join(dir, "big.bin")
	r := httptest.NewRequest("GET", "/big.bin", nil)
	r.Header.Set("Range", "bytes=0-1023,4096-8191,16384-32767")
	serve := func(fn func(http.ResponseWriter, *http.Request, *os.File)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(path)
			if err != nil {
				b.Error(err)
				return
			}
			defer f.Close()
			fn(w, r, f)
		})
	}
	b.Run("fastpath", func(b *testing.B) {
		runHandler(b, serve(func(w http.ResponseWriter, r *http.Request, f *os.File) {
			ServeContent(w, r, "big.bin", fixedTime, f)
		}), r, 206)
	})
	b.Run("net-http-ServeContent", func(b *testing.B) {
		runHandler(b, serve(func(w http.ResponseWriter, r *http.Request, f *os.File) {
			http.ServeContent(w, r, "big.bin", fixedTime, f)
		}), r, 206)
	})
}

// BenchmarkMultiRangeLoopback sends three 8 MiB parts of a 24 MiB file over
// a real loopback connection, where sendfile(2) matters: FileServer against
// http.FileServer.
func BenchmarkMultiRangeLoopback(b *testing.B) {
	dir := b.TempDir()
	const part = 8 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), 3*part/16)
	if err := os.WriteFile(filepath.Join(dir, "large.bin"), content, 0o644); err != nil {
		b.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"fastpath", FileServer(root)},
		{"net-http-FileServer", http.FileServer(http.Dir(dir))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := httptest.NewServer(bc.h)
			defer ts.Close()
			client := ts.Client()
			client.Transport.(*http.Transport).DisableCompression = true
			req, _ := http.NewRequest("GET", ts.URL+"/large.bin", nil)
			req.Header.Set("Range", "bytes=0-8388607,8388608-16777215,16777216-")
			b.SetBytes(3 * part)
			b.ReportAllocs()
			for b.Loop() {
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 206 || n < 3*part {
					b.Fatalf("status %d, %d bytes", res.StatusCode, n)
				}
			}
		})
	}
}
