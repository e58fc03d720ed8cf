// Package connreg lets code that holds only a request's context find the
// connection the request arrived on.
//
// net/http stores Conn.LocalAddr() in each request's context under
// http.LocalAddrContextKey. A wrapper connection that returns an address
// value of its own (a fresh *net.TCPAddr or *net.UnixAddr per connection,
// from Register) can therefore be found again by that value's identity, even
// when every connection of a listener shares one local address.
//
// # Use
//
// A wrapper registers itself when it is made and unregisters when it is
// closed:
//
//	func wrap(c net.Conn) *myConn {
//		m := &myConn{Conn: c}
//		m.laddr = connreg.Register(m, c.LocalAddr())
//		return m
//	}
//	func (m *myConn) LocalAddr() net.Addr { return m.laddr }
//	func (m *myConn) Close() error { connreg.Unregister(m.laddr); return m.Conn.Close() }
//
// FromContext returns the registered connection net/http saw, which is the
// outermost registered wrapper; Find walks NetConn() from there to the
// wrapper of the type a caller wants, however the wrappers were stacked:
//
//	mc, ok := connreg.Find[*myConn](connreg.FromContext(r.Context()))
//
// A *tls.Conn reports the address of the connection beneath it and has a
// NetConn method, so a wrapper beneath crypto/tls is found the same way.
package connreg
