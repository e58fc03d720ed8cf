package connreg

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// conns maps an address value handed out by Register (compared by pointer
// identity) to the connection that reports it.
var conns sync.Map // net.Addr -> net.Conn

// Addr is the address Register hands out for a local address that is neither
// a *net.TCPAddr nor a *net.UnixAddr: a pointer of its own, so it can be told
// apart by identity, that reports the wrapped address's network and string.
type Addr struct {
	net.Addr
}

// Register maps a fresh copy of local, the address the connection c wraps
// reports, to c, and returns the copy: c's LocalAddr must return it for
// FromContext to find c. A *net.TCPAddr or *net.UnixAddr is copied as the
// same type, so code that asserts the type keeps working; any other address
// is returned inside an *Addr. A nil local is returned as nil and registers
// nothing.
//
// The entry stays until Unregister; a wrapper unregisters when it is closed.
func Register(c net.Conn, local net.Addr) net.Addr {
	var a net.Addr
	switch l := local.(type) {
	case nil:
		return nil
	case *net.TCPAddr:
		cp := *l
		a = &cp
	case *net.UnixAddr:
		cp := *l
		a = &cp
	default:
		a = &Addr{Addr: local}
	}
	conns.Store(a, c)
	return a
}

// Unregister removes the entry Register made for addr. Unregistering an
// address twice, or one Register did not hand out, does nothing.
func Unregister(addr net.Addr) {
	if addr != nil {
		conns.Delete(addr)
	}
}

// Lookup returns the connection registered for addr, or nil.
func Lookup(addr net.Addr) net.Conn {
	if addr == nil {
		return nil
	}
	c, _ := conns.Load(addr)
	nc, _ := c.(net.Conn)
	return nc
}

// FromContext returns the registered connection a request arrived on: the
// one whose address net/http stored under http.LocalAddrContextKey, which is
// the outermost registered wrapper. It returns nil when the request's
// connection is not registered (or is closed).
func FromContext(ctx context.Context) net.Conn {
	a, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	return Lookup(a)
}

// maxDepth bounds the walk down NetConn, so a wrapper that returns itself or
// a cycle of wrappers cannot hang Find.
const maxDepth = 32

// Find returns the first connection of type T in the chain that starts at c
// and follows NetConn() net.Conn (as *tls.Conn and fastpath's wrappers offer
// it), c itself first. T may be a concrete type or an interface. It reports
// false when no connection in the chain is a T.
func Find[T any](c net.Conn) (T, bool) {
	for range maxDepth {
		if c == nil {
			break
		}
		if t, ok := c.(T); ok {
			return t, true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		next := u.NetConn()
		if next == c {
			break
		}
		c = next
	}
	var zero T
	return zero, false
}

// FindInContext is Find from the connection a request arrived on.
func FindInContext[T any](ctx context.Context) (T, bool) {
	return Find[T](FromContext(ctx))
}
