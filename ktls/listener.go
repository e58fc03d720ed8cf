package ktls

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Option configures NewListener.
type Option func(*config)

type config struct {
	handshakeTimeout time.Duration
	logger           *slog.Logger
}

// DefaultHandshakeTimeout bounds each handshake unless WithHandshakeTimeout
// says otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// WithHandshakeTimeout bounds each TLS handshake; a client that has not
// finished in d is disconnected. d <= 0 means DefaultHandshakeTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.handshakeTimeout = d
		}
	}
}

// WithLogger sets where failed handshakes (at debug level, as scanners make
// many) and connections closed during the hand-off (at warn level) are
// logged. nil means slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// NewListener returns a listener whose Accept returns connections with the
// TLS handshake done, in kernel TLS where it can: a *Conn, whose records the
// kernel seals and opens so that sendfile(2) serves files; otherwise the
// *tls.Conn, unchanged, for net/http to serve as usual (HTTP/2 included).
// StateOf and FromContext say which, and why. config is used as
// tls.NewListener would use it: it must have a certificate (Certificates,
// GetCertificate or GetConfigForClient), and its meaning is kept (session
// tickets stay on unless it turns them off; a KeyLogWriter still receives
// every line). It is cloned; later changes to it have no effect.
//
// Handshakes run concurrently, each bounded by the handshake timeout, so a
// slow client never holds up Accept. Close ends the handshakes in progress
// and closes the connections not yet accepted. See the package
// documentation for what is handed to the kernel and why.
func NewListener(inner net.Listener, config *tls.Config, opts ...Option) net.Listener {
	if config == nil {
		panic("fastpath/ktls: NewListener: nil *tls.Config")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		inner:   inner,
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		results: make(chan acceptResult),
		pending: map[net.Conn]struct{}{},
	}
	l.tlsConfig = config.Clone()
	userGet := l.tlsConfig.GetConfigForClient
	l.tlsConfig.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		base := l.tlsConfig
		if userGet != nil {
			c, err := userGet(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				base = c
			}
		}
		h, ok := hello.Conn.(*hsConn)
		if !ok {
			return base, nil
		}
		// A config per connection, so its KeyLogWriter sees only this
		// connection's secrets. Clone keeps the session ticket keys, and
		// crypto/tls keeps using the original config's automatic ones.
		c := base.Clone()
		c.GetConfigForClient = nil
		h.keys.forward = base.KeyLogWriter
		c.KeyLogWriter = &h.keys
		return c, nil
	}
	return l
}

func defaultConfig() config {
	return config{handshakeTimeout: DefaultHandshakeTimeout}
}

func (c *config) log() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}

type acceptResult struct {
	c   net.Conn
	err error
}

type listener struct {
	inner     net.Listener
	tlsConfig *tls.Config
	cfg       config
	ctx       context.Context
	cancel    context.CancelFunc
	results   chan acceptResult
	startOnce sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // accepted, not yet returned by Accept
	closed  bool
}

// Accept returns the next connection whose handshake is done.
func (l *listener) Accept() (net.Conn, error) {
	l.startOnce.Do(func() {
		l.wg.Add(1)
		go l.acceptLoop()
	})
	select {
	case r := <-l.results:
		return r.c, r.err
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.inner.Addr().Network(), Addr: l.inner.Addr(), Err: net.ErrClosed}
	}
}

// acceptLoop accepts from the inner listener and starts a handshake per
// connection. An Accept error goes to Accept's caller, and the loop waits
// for it to be taken before accepting again, so a caller's back-off on a
// temporary error (as net/http's) paces the loop.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case l.results <- acceptResult{err: err}:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !l.track(c) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// track records c as pending, or reports false when the listener is closed.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// handshake runs the TLS handshake of one connection, hands it to the
// kernel where it can, and passes the result to Accept.
func (l *listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	defer l.untrack(raw)
	h := newHSConn(raw)
	tc := tls.Server(h, l.tlsConfig)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.cfg.log().Debug("ktls: TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		tc.Close()
		return
	}
	c, err := handOff(h, tc)
	if err != nil {
		l.cfg.log().Warn("ktls: connection closed during the hand-off to kernel TLS",
			"remote", raw.RemoteAddr().String(), "error", err)
		return
	}
	select {
	case l.results <- acceptResult{c: c}:
	case <-l.ctx.Done():
		c.Close()
	}
}

// Close closes the inner listener, ends the handshakes in progress, closes
// the connections not yet accepted, and waits for its goroutines to exit.
func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.inner.Close()
		l.cancel()
		l.mu.Lock()
		l.closed = true
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Addr returns the inner listener's address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }
