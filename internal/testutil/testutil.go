// Package testutil holds small pieces the project's tests and measuring
// commands share: a buffer a server may write while a test reads it, test
// files of random bytes, the naive byte-counting ResponseWriter, a counting reader, and a
// description of the machine.
package testutil

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// LockedBuffer is a bytes.Buffer that one goroutine (a logger, a process
// pipe) may write while another reads it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CountingWriter is the byte-counting wrapper of the incident in the README,
// the one everybody writes once: embedding http.ResponseWriter gives it
// Header, Write and WriteHeader and nothing else, so it hides io.ReaderFrom
// (and Flush, and Unwrap) and turns sendfile into a copy loop.
type CountingWriter struct {
	http.ResponseWriter
	N int64 // bytes written
}

// Write writes p and counts the bytes written.
func (w *CountingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.N += int64(n)
	return n, err
}

// CountingReader counts the bytes read through it.
type CountingReader struct {
	R io.Reader
	N int64 // bytes read
}

// Read reads from R and counts the bytes read.
func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// Machine describes this machine for a report: CPU model, logical CPUs and
// kernel, such as "AMD EPYC, 2 cores, Linux 6.18.44".
func Machine() string {
	model, cores := "unknown CPU", 0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				cores++
			case "model name":
				if model == "unknown CPU" {
					model = strings.Join(strings.Fields(v), " ")
				}
			}
		}
		f.Close()
	}
	if cores == 0 {
		cores = runtime.NumCPU()
	}
	kernel := runtime.GOOS
	if b, err := os.ReadFile("/proc/sys/kernel/ostype"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel += " " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d cores, %s", model, cores, kernel)
}

// RandomBytes returns size pseudo-random bytes, the same for the same size.
func RandomBytes(size int) []byte {
	data := make([]byte, size+7)
	rng := rand.New(rand.NewPCG(3, uint64(size)))
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	return data[:size:size]
}

// WriteRandomFile writes RandomBytes(size) to dir/name and returns them.
func WriteRandomFile(tb testing.TB, dir, name string, size int) []byte {
	tb.Helper()
	data := RandomBytes(size)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return data
}

// Child is a test binary re-executed as a server, started by StartChild.
type Child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stopped bool
	err     error
}

// StartChild starts cmd, a child that prints one line once it is ready and
// exits when its standard input closes, and returns the child and that line
// without its newline. A cleanup of tb stops the child if the test has not.
// cmd's Stderr is the caller's; when it has a String method (a
// *LockedBuffer), a child that never gets ready is failed with it.
func StartChild(tb testing.TB, cmd *exec.Cmd) (*Child, string) {
	tb.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	c := &Child{cmd: cmd}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Stop() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		msg := fmt.Sprintf("child did not start: %v", err)
		if s, ok := cmd.Stderr.(fmt.Stringer); ok {
			msg += "\n" + s.String()
		}
		tb.Fatal(msg)
	}
	return c, strings.TrimSuffix(line, "\n")
}

// Stop closes the child's standard input and waits for it to exit; later
// calls return what the first did.
func (c *Child) Stop() error {
	if !c.stopped {
		c.stopped = true
		c.stdin.Close()
		c.err = c.cmd.Wait()
	}
	return c.err
}
