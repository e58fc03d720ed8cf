//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package handlers

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileServerSpecialFiles checks that FIFOs and sockets answer 404, and
// that opening a FIFO with no writer does not block the request.
func TestFileServerSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Unix socket paths are short; listen from inside the directory.
	t.Chdir(dir)
	l, err := net.Listen("unix", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fs := FileServer(root, WithIndex(), WithDirectoryListing())
	for _, path := range []string{"/fifo", "/sock", "/fifo.gz"} {
		t.Run(path, func(t *testing.T) {
			res := record(fs, request("GET", path, "Accept-Encoding", "gzip"))
			if res.status != 404 || string(res.body) != notFound {
				t.Errorf("got %d %q, want 404", res.status, res.body)
			}
		})
	}
	t.Run("listing shows only what is served", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		for name, target := range map[string]string{"to-fifo": "fifo", "to-plain": "plain.txt", "dangling": "nope", "out": "/etc/passwd"} {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		res := record(fs, request("GET", "/"))
		want := "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n" +
			"<a href=\"plain.txt\">plain.txt</a>\n" +
			"<a href=\"to-plain\">to-plain</a>\n" +
			"</pre>\n"
		if res.status != 200 || string(res.body) != want {
			t.Errorf("got %d:\n%s\nwant:\n%s", res.status, res.body, want)
		}
		for _, name := range []string{"fifo", "sock", "to-fifo", "dangling", "out"} {
			os.Remove(filepath.Join(dir, name))
		}
		os.Remove(filepath.Join(dir, "plain.txt"))
		os.Remove(filepath.Join(dir, "to-plain"))
		syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	})
	t.Run("fifo as sidecar", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(dir, "a.txt.gz"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := record(fs, request("GET", "/a.txt", "Accept-Encoding", "gzip"))
		if res.status != 200 || string(res.body) != "a\n" || res.header.Get("Content-Encoding") != "" {
			t.Errorf("got %d %q %q, want the identity file", res.status, res.body, res.header.Get("Content-Encoding"))
		}
	})
	t.Run("unreadable file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root can read anything")
		}
		p := filepath.Join(dir, "secret.txt")
		if err := os.WriteFile(p, []byte("x"), 0o000); err != nil {
			t.Fatal(err)
		}
		res := record(fs, request("GET", "/secret.txt"))
		if res.status != 404 || string(res.body) != notFound {
			t.Errorf("got %d %q, want 404", res.status, res.body)
		}
	})
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"too many open files", &os.PathError{Op: "openat", Path: "x", Err: syscall.EMFILE}, true},
		{"file table full", &os.PathError{Op: "openat", Path: "x", Err: syscall.ENFILE}, true},
		{"I/O error", &os.PathError{Op: "openat", Path: "x", Err: syscall.EIO}, true},
		{"not found", &os.PathError{Op: "openat", Path: "x", Err: syscall.ENOENT}, false},
		{"permission", &os.PathError{Op: "openat", Path: "x", Err: syscall.EACCES}, false},
		{"loop", &os.PathError{Op: "openat", Path: "x", Err: syscall.ELOOP}, false},
		{"name too long", &os.PathError{Op: "openat", Path: "x", Err: syscall.ENAMETOOLONG}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTransient(tt.err); got != tt.want {
				t.Errorf("isTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	t.Run("root escape", func(t *testing.T) {
		tree := newTestTree(t)
		_, err := tree.root.Open("link-out")
		if err == nil || isTransient(err) {
			t.Errorf("escape error %v: transient or nil", err)
		}
	})
}
