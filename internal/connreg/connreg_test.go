package connreg

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// wrapper is the smallest registered wrapper: what Register's users write.
type wrapper struct {
	net.Conn
	name  string
	laddr net.Addr
}

func wrap(c net.Conn, name string) *wrapper {
	w := &wrapper{Conn: c, name: name}
	w.laddr = Register(w, c.LocalAddr())
	return w
}

func (w *wrapper) LocalAddr() net.Addr { return w.laddr }
func (w *wrapper) NetConn() net.Conn   { return w.Conn }
func (w *wrapper) Close() error {
	Unregister(w.laddr)
	return w.Conn.Close()
}

// other is a second wrapper type, to find one type among several.
type other struct{ *wrapper }

func (o other) NetConn() net.Conn { return o.wrapper }

type namer interface{ Name() string }

func (w *wrapper) Name() string { return w.name }

type wrapListener struct {
	net.Listener
	wrapConn func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrapConn(c), nil
}

// TestFromContext serves real requests over loopback through stacked
// wrappers and checks which connection each handler finds.
func TestFromContext(t *testing.T) {
	tests := []struct {
		name      string
		wrapConn  func(net.Conn) net.Conn
		tls       bool
		wantFirst string // name of the connection FromContext returns, "" for nil
		wantInner string // name Find[*wrapper] on the innermost wrapper returns
	}{
		{name: "unwrapped", wrapConn: func(c net.Conn) net.Conn { return c }},
		{name: "one wrapper", wrapConn: func(c net.Conn) net.Conn { return wrap(c, "a") },
			wantFirst: "a", wantInner: "a"},
		{name: "two wrappers", wrapConn: func(c net.Conn) net.Conn { return wrap(wrap(c, "inner"), "outer") },
			wantFirst: "outer", wantInner: "outer"},
		{name: "unregistered wrapper outside", wrapConn: func(c net.Conn) net.Conn { return other{wrap(c, "a")} },
			wantFirst: "a", wantInner: "a"},
		{name: "beneath crypto/tls", tls: true, wrapConn: func(c net.Conn) net.Conn { return wrap(c, "below") },
			wantFirst: "below", wantInner: "below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type found struct{ first, inner string }
			got := make(chan found, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var f found
				if c := FromContext(r.Context()); c != nil {
					if n, ok := Find[namer](c); ok {
						f.first = n.Name()
					}
				}
				if w, ok := FindInContext[*wrapper](r.Context()); ok {
					f.inner = w.name
				}
				got <- f
			}))
			srv.Listener = wrapListener{Listener: srv.Listener, wrapConn: tt.wrapConn}
			if tt.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			res, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			f := <-got
			if f.first != tt.wantFirst || f.inner != tt.wantInner {
				t.Errorf("found (first %q, *wrapper %q), want (%q, %q)", f.first, f.inner, tt.wantFirst, tt.wantInner)
			}
		})
	}
}

type fakeConn struct {
	net.Conn
	laddr net.Addr
}

func (f fakeConn) LocalAddr() net.Addr { return f.laddr }

// TestRegister checks the copies Register hands out and Unregister's effect.
func TestRegister(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	unix := &net.UnixAddr{Name: "/run/s", Net: "unix"}
	pipe := fakeAddr("pipe")
	tests := []struct {
		name    string
		local   net.Addr
		wantNil bool
	}{
		{name: "tcp", local: tcp},
		{name: "unix", local: unix},
		{name: "other type", local: pipe},
		{name: "nil", local: nil, wantNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeConn{}
			a := Register(c, tt.local)
			if tt.wantNil {
				if a != nil {
					t.Fatalf("Register(nil) = %v, want nil", a)
				}
				if Lookup(nil) != nil {
					t.Fatal("Lookup(nil) found a connection")
				}
				return
			}
			if a == tt.local {
				t.Fatal("Register returned the address it was given, not a copy")
			}
			if a.Network() != tt.local.Network() || a.String() != tt.local.String() {
				t.Errorf("copy is %s %s, want %s %s", a.Network(), a, tt.local.Network(), tt.local)
			}
			if got := Lookup(a); got != c {
				t.Errorf("Lookup = %v, want the registered conn", got)
			}
			ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, a)
			if got := FromContext(ctx); got != c {
				t.Errorf("FromContext = %v, want the registered conn", got)
			}
			if Lookup(tt.local) != nil {
				t.Error("the original address value found a connection")
			}
			Unregister(a)
			Unregister(a)
			if Lookup(a) != nil {
				t.Error("Lookup found the connection after Unregister")
			}
		})
	}
}

type fakeAddr string

func (f fakeAddr) Network() string { return string(f) }
func (f fakeAddr) String() string  { return string(f) + ":0" }

// selfish returns itself from NetConn, which must not hang Find.
type selfish struct{ net.Conn }

func (s *selfish) NetConn() net.Conn { return s }

func TestFind(t *testing.T) {
	base := &wrapper{name: "base"}
	tc := tls.Client(base, &tls.Config{})
	tests := []struct {
		name   string
		c      net.Conn
		wantOK bool
	}{
		{name: "nil", c: nil},
		{name: "itself", c: base, wantOK: true},
		{name: "through tls.Conn", c: tc, wantOK: true},
		{name: "through two", c: other{base}, wantOK: true},
		{name: "self loop", c: &selfish{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, ok := Find[*wrapper](tt.c)
			if ok != tt.wantOK || (ok && w != base) {
				t.Errorf("Find = %v, %v; want base=%v", w, ok, tt.wantOK)
			}
		})
	}
}
