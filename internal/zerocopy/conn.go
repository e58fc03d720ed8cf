package zerocopy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastpath-go/fastpath/internal/connreg"
)

// Listener wraps the connections an inner listener accepts in a *Conn,
// except a *tls.Conn (from a TLS listener inside it), which it returns
// unchanged: net/http serves TLS, HTTP/2 and r.TLS only for a *tls.Conn it
// sees as such, and crypto/tls never hands a file to sendfile, so there is
// nothing to count.
type Listener struct {
	net.Listener
}

// Accept waits for the next connection and returns it wrapped in a *Conn.
// Refused a descriptor (EMFILE, ENFILE), it closes the pipes and, when
// there were any, tries again at once.
func (l Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if descriptorsOut(err) && ReleasePipes() > 0 {
				continue
			}
			return nil, err
		}
		if _, ok := c.(*tls.Conn); ok {
			return c, nil
		}
		return NewConn(c), nil
	}
}

// descriptorsOut reports an error of a call refused a descriptor.
func descriptorsOut(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// openConns counts the Conns open, and sources the Sources being moved (each
// a socket): they bound the descriptors in use from below where the numbers
// the kernel hands out have holes beneath them.
var openConns, sources atomic.Int64

// Conn is a net.Conn that counts the bytes sendfile(2) and splice(2) sent
// through it.
//
// It keeps the methods net/http and users rely on: io.ReaderFrom (so sendfile
// and splice still happen), io.WriterTo, CloseRead, CloseWrite, deadlines,
// SyscallConn, and SetKeepAlive, SetKeepAlivePeriod, SetNoDelay and SetLinger.
// NetConn returns the connection it wraps, for anything else.
type Conn struct {
	net.Conn
	laddr    net.Addr
	sendfile atomic.Int64
	splice   atomic.Int64
	closed   atomic.Bool
}

var (
	_ io.ReaderFrom = (*Conn)(nil)
	_ io.WriterTo   = (*Conn)(nil)
	_ syscall.Conn  = (*Conn)(nil)
)

// NewConn wraps c. The Conn is registered for FromContext until it is closed.
func NewConn(c net.Conn) *Conn {
	zc := &Conn{Conn: c}
	openConns.Add(1)
	// A fresh address value per connection (connreg's) is how a request,
	// which holds only that value, finds the Conn, even when an inner Conn
	// shares one address value between connections.
	zc.laddr = connreg.Register(zc, c.LocalAddr())
	return zc
}

// FromContext returns the Conn a request arrived on, or nil when the request
// did not come through a Listener (or its connection is closed). A wrapper
// above the Conn registered in internal/connreg (a ktls.Conn, say) leads to
// it too.
func FromContext(ctx context.Context) *Conn {
	zc, _ := connreg.FindInContext[*Conn](ctx)
	return zc
}

// Sendfile returns the bytes sendfile(2) has sent on the connection so far.
func (c *Conn) Sendfile() int64 { return c.sendfile.Load() }

// Splice returns the bytes splice(2) has moved to the connection so far,
// from a *Source handed to ReadFrom.
func (c *Conn) Splice() int64 { return c.splice.Load() }

// LocalAddr returns the local address. The value is the Conn's own copy; its
// identity is how FromContext finds the Conn.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// NetConn returns the connection c wraps.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and removes it from the registry.
func (c *Conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		connreg.Unregister(c.laddr)
		openConns.Add(-1)
	}
	return c.Conn.Close()
}

// ReadFrom implements io.ReaderFrom. When r is a file (anything offering a
// descriptor through syscall.Conn that is not a socket: an *os.File, or the
// wrapper io.Copy puts around one), possibly inside an *io.LimitedReader,
// the inner connection's ReadFrom gets a reader that still offers the
// descriptor (so the runtime can use sendfile) but counts what is read
// through it (so a fallback copy is not mistaken for sendfile). Any other
// source, a socket included, goes to the inner ReadFrom unchanged, so the
// runtime's splice(2) between sockets keeps working (uncounted). A *Source
// is spliced and counted by Conn itself.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if s, ok := r.(*Source); ok {
		return c.readFromSource(s)
	}
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{c.Conn}, r)
	}
	lr, limited := r.(*io.LimitedReader)
	src := r
	if limited {
		src = lr.R
	}
	// net.sendFile takes any syscall.Conn, such as os.fileWithoutWriteTo,
	// which is what reaches here from io.Copy(w, f).
	f, ok := src.(fileSource)
	if _, socket := src.(net.Conn); !ok || socket {
		return rf.ReadFrom(r)
	}
	fr := &fileReader{f: f}
	var (
		n   int64
		err error
	)
	if limited {
		inner := &io.LimitedReader{R: fr, N: lr.N}
		n, err = rf.ReadFrom(inner)
		lr.N = inner.N
	} else {
		n, err = rf.ReadFrom(fr)
	}
	// The runtime either sends with sendfile or, when the first sendfile call
	// is refused, copies through Read; it never mixes the two in one call.
	if fr.read == 0 && n > 0 {
		c.sendfile.Add(n)
	}
	return n, err
}

// WriteTo implements io.WriterTo, so splice(2) from the socket keeps working.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, readerOnly{c.Conn})
}

// SyscallConn returns the inner connection's raw connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite shuts down the writing side of the connection.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// CloseRead shuts down the reading side of the connection.
func (c *Conn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}

// SetKeepAlive is (*net.TCPConn).SetKeepAlive on the inner connection.
func (c *Conn) SetKeepAlive(keepalive bool) error {
	if t, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return t.SetKeepAlive(keepalive)
	}
	return errors.ErrUnsupported
}

// SetKeepAlivePeriod is (*net.TCPConn).SetKeepAlivePeriod on the inner connection.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	if t, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return t.SetKeepAlivePeriod(d)
	}
	return errors.ErrUnsupported
}

// SetNoDelay is (*net.TCPConn).SetNoDelay on the inner connection.
func (c *Conn) SetNoDelay(noDelay bool) error {
	if t, ok := c.Conn.(interface{ SetNoDelay(bool) error }); ok {
		return t.SetNoDelay(noDelay)
	}
	return errors.ErrUnsupported
}

// SetLinger is (*net.TCPConn).SetLinger on the inner connection.
func (c *Conn) SetLinger(sec int) error {
	if t, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return t.SetLinger(sec)
	}
	return errors.ErrUnsupported
}

// fileSource is a readable source with a descriptor: what net.sendFile can
// send from.
type fileSource interface {
	io.Reader
	syscall.Conn
}

// fileReader offers a file's descriptor to the runtime's sendfile path and
// counts the bytes read through Read by any fallback copy. It deliberately has
// no WriteTo, so a fallback io.Copy reads through Read.
type fileReader struct {
	f    fileSource
	read int64
}

func (r *fileReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.read += int64(n)
	return n, err
}

func (r *fileReader) SyscallConn() (syscall.RawConn, error) { return r.f.SyscallConn() }

type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }
