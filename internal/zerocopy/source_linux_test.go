package zerocopy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

var aLongTimeAgo = time.Unix(1, 0)

// tcpPair returns the two ends of a loopback TCP connection: the dialed end
// (what a proxy reads its upstream from) and the accepted end (the upstream).
func tcpPair(t *testing.T) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func TestSpliceSource(t *testing.T) {
	const size = 3<<20 + 12345
	data := pattern(size + 100)
	tests := []struct {
		name string
		// upstream writes to the upstream end; received is closed once the
		// client has read what it was sent so far.
		upstream   func(t *testing.T, up *net.TCPConn, clientHas func(int))
		n          int64 // Source.N
		wantN      int64 // bytes moved
		wantLeft   int64 // Source.N after
		wantErr    error // in Source.Err, nil for none
		wantUnread int   // bytes left unread on the upstream socket
	}{
		{name: "whole body", n: size, wantN: size,
			upstream: func(t *testing.T, up *net.TCPConn, _ func(int)) { up.Write(data[:size]) }},
		{name: "socket holds more than N", n: size, wantN: size, wantUnread: 100,
			upstream: func(t *testing.T, up *net.TCPConn, _ func(int)) { up.Write(data[:size+100]); up.CloseWrite() }},
		{name: "upstream closes early", n: size, wantN: size - 1000, wantLeft: 1000,
			upstream: func(t *testing.T, up *net.TCPConn, _ func(int)) { up.Write(data[:size-1000]); up.CloseWrite() }},
		{name: "upstream resets", n: size, wantN: 1000, wantLeft: size - 1000, wantErr: syscall.ECONNRESET,
			upstream: func(t *testing.T, up *net.TCPConn, clientHas func(int)) {
				up.Write(data[:1000])
				clientHas(1000) // every byte sent was spliced: the reset strands none
				up.SetLinger(0)
				up.Close()
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pair(t)
			src, up := tcpPair(t)
			var (
				mu   sync.Mutex
				cond = sync.NewCond(&mu)
				have int
			)
			got := make(chan []byte, 1)
			go func() {
				var buf bytes.Buffer
				p := make([]byte, 64<<10)
				for {
					n, err := client.Read(p)
					buf.Write(p[:n])
					mu.Lock()
					have = buf.Len()
					cond.Broadcast()
					mu.Unlock()
					if err != nil {
						got <- buf.Bytes()
						return
					}
				}
			}()
			clientHas := func(n int) {
				mu.Lock()
				defer mu.Unlock()
				for have < n {
					cond.Wait()
				}
			}
			go tt.upstream(t, up, clientHas)
			s := &Source{Conn: src, N: tt.n}
			n, err := server.ReadFrom(s)
			if err != nil {
				t.Fatalf("ReadFrom error %v: a failure of the source must stay in Source.Err", err)
			}
			server.Close()
			body := <-got
			if n != tt.wantN || int64(len(body)) != tt.wantN || !bytes.Equal(body, data[:len(body)]) {
				t.Errorf("ReadFrom = %d, client got %d bytes (equal: %v), want %d", n, len(body), bytes.Equal(body, data[:len(body)]), tt.wantN)
			}
			if got := server.Splice(); got != tt.wantN {
				t.Errorf("Splice() = %d, want %d", got, tt.wantN)
			}
			if s.N != tt.wantLeft {
				t.Errorf("Source.N = %d after, want %d", s.N, tt.wantLeft)
			}
			if (s.Err == nil) != (tt.wantErr == nil) || (tt.wantErr != nil && !errors.Is(s.Err, tt.wantErr)) {
				t.Errorf("Source.Err = %v, want %v", s.Err, tt.wantErr)
			}
			if tt.wantUnread > 0 {
				rest, _ := io.ReadAll(src)
				if !bytes.Equal(rest, data[size:size+tt.wantUnread]) {
					t.Errorf("left %d bytes on the socket, want the %d past N", len(rest), tt.wantUnread)
				}
			}
		})
	}
}

func TestSpliceSourceDeadline(t *testing.T) {
	server, client := pair(t)
	src, _ := tcpPair(t)
	go io.Copy(io.Discard, client)
	src.SetReadDeadline(aLongTimeAgo)
	s := &Source{Conn: src, N: 100}
	n, err := server.ReadFrom(s)
	if n != 0 || err != nil || !errors.Is(s.Err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom = %d, %v with Source.Err %v; want 0, nil and a deadline error", n, err, s.Err)
	}
}

func TestSpliceSourceClientGone(t *testing.T) {
	server, client := pair(t)
	src, up := tcpPair(t)
	// The client leaves without reading: its kernel answers with a reset,
	// and the splice to it fails with EPIPE or ECONNRESET.
	client.(*net.TCPConn).SetLinger(0)
	client.Close()
	go up.Write(pattern(8 << 20))
	s := &Source{Conn: src, N: 8 << 20}
	n, err := server.ReadFrom(s)
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("ReadFrom = %d, %v; want EPIPE or ECONNRESET", n, err)
	}
	if s.Err != nil {
		t.Errorf("Source.Err = %v: the client's failure is not the source's", s.Err)
	}
	if got := server.Splice(); got != n {
		t.Errorf("Splice() = %d, ReadFrom moved %d", got, n)
	}
}

func TestSourceNotASocket(t *testing.T) {
	server, client := pair(t)
	a, b := net.Pipe()
	defer a.Close()
	go func() { b.Write(pattern(5000)); b.Close() }()
	got := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, client); got <- n }()
	s := &Source{Conn: a, N: 4000}
	n, err := server.ReadFrom(s)
	server.Close()
	if n != 4000 || err != nil || <-got != 4000 {
		t.Errorf("ReadFrom = %d, %v; want 4000 bytes copied", n, err)
	}
	if server.Splice() != 0 {
		t.Errorf("Splice() = %d for a copy, want 0", server.Splice())
	}
}

// TestPutPipeClosesStrandedData checks that a pipe still holding bytes is
// closed at once, not pooled and not left to the garbage collector.
func TestPutPipeClosesStrandedData(t *testing.T) {
	tests := []struct {
		name       string
		data       int
		wantClosed bool
	}{
		{name: "empty: pooled", data: 0, wantClosed: false},
		{name: "bytes stranded: closed", data: 5, wantClosed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := newPool(readBudget(), time.Hour, descriptorLimit)
			p, why := pl.get()
			if p == nil {
				t.Fatalf("no pipe: %d", why)
			}
			if tt.data > 0 {
				if n, err := syscall.Write(p.w, make([]byte, tt.data)); n != tt.data || err != nil {
					t.Fatalf("write to the pipe: %d, %v", n, err)
				}
			}
			p.data = tt.data
			r, w := p.r, p.w
			pl.put(p)
			for _, fd := range []int{r, w} {
				_, err := fcntlGetfd(fd)
				if closed := err == syscall.EBADF; closed != tt.wantClosed {
					t.Errorf("descriptor %d closed: %v, want %v", fd, closed, tt.wantClosed)
				}
			}
		})
	}
}

func fcntlGetfd(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
