package zerocopy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/fastpath-go/fastpath/internal/connreg"
)

// pair returns a server-side Conn accepted through Listener and the client
// end, both on loopback TCP.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	zl := Listener{Listener: ln}
	done := make(chan net.Conn, 1)
	go func() {
		c, err := zl.Accept()
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := (<-done).(*Conn)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func tempFile(t *testing.T, size int) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestReadFromCounts(t *testing.T) {
	tests := []struct {
		name         string
		src          func(t *testing.T) io.Reader
		wantN        int64
		wantSendfile int64
	}{
		{name: "file", src: func(t *testing.T) io.Reader { return tempFile(t, 100000) },
			wantN: 100000, wantSendfile: 100000},
		{name: "limited file", src: func(t *testing.T) io.Reader { return io.LimitReader(tempFile(t, 100000), 4096) },
			wantN: 4096, wantSendfile: 4096},
		{name: "file behind io.Copy's wrapper", src: func(t *testing.T) io.Reader { return withoutWriteTo{tempFile(t, 100000)} },
			wantN: 100000, wantSendfile: 100000},
		{name: "not a file", src: func(t *testing.T) io.Reader { return io.LimitReader(zeros{}, 5000) },
			wantN: 5000, wantSendfile: 0},
		{name: "pipe: sendfile refused, copied instead", src: func(t *testing.T) io.Reader {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			go func() { w.Write(make([]byte, 3000)); w.Close() }()
			t.Cleanup(func() { r.Close() })
			return r
		}, wantN: 3000, wantSendfile: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pair(t)
			got := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, client)
				got <- n
			}()
			src := tt.src(t)
			n, err := server.ReadFrom(src)
			if err != nil {
				t.Fatal(err)
			}
			server.Close()
			if n != tt.wantN || <-got != tt.wantN {
				t.Errorf("ReadFrom = %d, want %d, all received", n, tt.wantN)
			}
			if s := server.Sendfile(); s != tt.wantSendfile {
				t.Errorf("Sendfile() = %d, want %d", s, tt.wantSendfile)
			}
			if lr, ok := src.(*io.LimitedReader); ok && lr.N != 0 {
				t.Errorf("LimitedReader.N = %d after the copy, want 0", lr.N)
			}
		})
	}
}

// withoutWriteTo is what io.Copy(w, f) hands to w.ReadFrom: os.File.WriteTo
// falls back to io.Copy with the file wrapped like this (os's
// fileWithoutWriteTo), still a syscall.Conn but no longer an *os.File.
type withoutWriteTo struct{ *os.File }

func (withoutWriteTo) WriteTo(io.Writer) (int64, error) { panic("hidden") }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestConnKeepsTCPMethods(t *testing.T) {
	server, client := pair(t)
	if server.NetConn().(*net.TCPConn) == nil {
		t.Fatal("NetConn is not the accepted *net.TCPConn")
	}
	for name, err := range map[string]error{
		"SetKeepAlive": server.SetKeepAlive(true),
		"SetNoDelay":   server.SetNoDelay(true),
		"SetLinger":    server.SetLinger(1),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := server.SyscallConn(); err != nil {
		t.Errorf("SyscallConn: %v", err)
	}
	server.Write([]byte("bye"))
	if err := server.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	b, err := io.ReadAll(client)
	if err != nil || string(b) != "bye" {
		t.Errorf("client read %q, %v; want bye then EOF", b, err)
	}
}

func TestFromContext(t *testing.T) {
	server, _ := pair(t)
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, server.LocalAddr())
	if got := FromContext(ctx); got != server {
		t.Fatalf("FromContext = %p, want %p", got, server)
	}
	// Another connection's address, even an equal one, is not this one.
	other := *server.LocalAddr().(*net.TCPAddr)
	if got := FromContext(context.WithValue(context.Background(), http.LocalAddrContextKey, &other)); got != nil {
		t.Errorf("FromContext with an equal address value from elsewhere = %p, want nil", got)
	}
	if got := FromContext(context.Background()); got != nil {
		t.Errorf("FromContext without an address = %p, want nil", got)
	}
	server.Close()
	if got := FromContext(ctx); got != nil {
		t.Errorf("FromContext after Close = %p, want nil", got)
	}
}

// above is a wrapper registered above a Conn, as ktls.Conn is.
type above struct {
	net.Conn
	laddr net.Addr
}

func (a *above) LocalAddr() net.Addr { return a.laddr }
func (a *above) NetConn() net.Conn   { return a.Conn }

// TestFromContextThroughAWrapper checks that a request on a connection
// wrapped above the Conn, which net/http knows by the wrapper's address,
// still finds the Conn.
func TestFromContextThroughAWrapper(t *testing.T) {
	server, _ := pair(t)
	w := &above{Conn: server}
	w.laddr = connreg.Register(w, server.LocalAddr())
	defer connreg.Unregister(w.laddr)
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, w.LocalAddr())
	if got := FromContext(ctx); got != server {
		t.Fatalf("FromContext through a wrapper = %p, want %p", got, server)
	}
}

// TestListenerLeavesTLSConns checks that Listener returns a *tls.Conn from
// a TLS listener inside it unchanged, so net/http still serves it as TLS
// (r.TLS, HTTP/2), and wraps any other connection.
func TestListenerLeavesTLSConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := Listener{Listener: tls.NewListener(ln, &tls.Config{})}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := tl.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := <-accepted
	defer c.Close()
	if _, ok := c.(*tls.Conn); !ok {
		t.Errorf("Accept returned %T for a TLS connection, want it unchanged (*tls.Conn)", c)
	}
	server, _ := pair(t)
	if _, ok := net.Conn(server).(*Conn); !ok {
		t.Errorf("Accept returned %T for a TCP connection, want *Conn", server)
	}
}

// plainConn is a net.Conn without the optional methods of *net.TCPConn.
type plainConn struct{ net.Conn }

func TestConnWithoutOptionalMethods(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(plainConn{a})
	defer c.Close()
	if err := c.CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite = %v, want ErrUnsupported", err)
	}
	if _, err := c.SyscallConn(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SyscallConn = %v, want ErrUnsupported", err)
	}
	go io.Copy(io.Discard, b)
	if n, err := c.ReadFrom(io.LimitReader(zeros{}, 100)); n != 100 || err != nil {
		t.Errorf("ReadFrom = %d, %v; want 100, nil", n, err)
	}
	if c.Sendfile() != 0 {
		t.Errorf("Sendfile() = %d, want 0", c.Sendfile())
	}
}
