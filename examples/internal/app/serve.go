package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts of the example servers besides those the flags set. There is no
// WriteTimeout: it would cap every download's total time;
// handlers.WithSendTimeout cuts off stalled readers instead.
const (
	// ReadTimeout bounds the whole request, body included, on the servers
	// of files; a proxy passes request bodies of any length upstream.
	ReadTimeout = 30 * time.Second
	IdleTimeout = 2 * time.Minute // between requests on a kept-alive connection
)

// Serve serves h on ln until ctx is done, then shuts down gracefully:
// in-flight requests get ShutdownTimeout to finish, after which the
// remaining connections are closed, and a line on stderr says how long it
// took and how many requests were drained or cut off. When MetricsAddr is
// set it serves the metrics on /metrics there. It prints a banner, where it
// listens and a request to try, to stderr, and calls ready, when Run was
// given one, once the server accepts connections.
//
// A connection closed before it delivered a complete request (a client that
// never finished its headers and was cut off by ReadHeaderTimeout, say)
// never reaches the middleware, so Serve logs it itself.
func (s *Server) Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	tr := newTracker()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer tr.start(r)()
			if s.SendTimeout > 0 {
				// Every response must be written within the send timeout;
				// a file download pushes the deadline on while it progresses
				// (handlers.WithSendTimeout).
				http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.SendTimeout))
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		ConnContext:       tr.connContext,
		ConnState: func(c net.Conn, st http.ConnState) {
			if tr.connState(c, st) {
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				s.Logger.Info("connection closed before a complete request", "client.address", host)
			}
		},
	}
	if s.Root != nil {
		srv.ReadTimeout = ReadTimeout
	}
	scheme, curlOpts := "http", ""
	if s.TLS != nil {
		scheme = "https"
		if selfSigned(s.TLS) {
			curlOpts = "--cacert " + shellQuote(s.TLSCert) + " "
		}
	}
	base := scheme + "://" + ln.Addr().String()
	metricsURL := base + "/metrics"
	if s.MetricsAddr != "" {
		addr, stop, err := serveMetrics(s.MetricsAddr, s.Metrics)
		if err != nil {
			return err
		}
		defer stop()
		metricsURL = "http://" + addr.String() + "/metrics"
	}
	if s.Root != nil {
		banner(s.stderr, base, metricsURL, s.Config.Root, s.Listing, curlOpts)
	} else {
		fmt.Fprintf(s.stderr, "fastpath: %s on %s (-addr picks another address)\n  metrics: %s\n  health:  %s/healthz\n",
			s.ex.Describe(), base, metricsURL, base)
	}
	if s.TLS != nil {
		fmt.Fprintf(s.stderr, "  %s\n", ktlsLine())
	}
	if s.DebugAddr != "" {
		stop, err := serveDebug(s.DebugAddr, s.stderr, tr)
		if err != nil {
			return err
		}
		defer stop()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if s.ready != nil {
		s.ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	err := s.shutdown(srv, tr)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// shutdown stops srv gracefully, within ShutdownTimeout, and says on stderr
// what it drained and how long it took.
func (s *Server) shutdown(srv *http.Server, tr *tracker) error {
	began, finished := time.Now(), tr.finished.Load()
	fmt.Fprintf(s.stderr, "fastpath: shutting down: draining %s, for at most %v (-shutdown-timeout)\n",
		requests(tr.inFlight.Load()), s.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(s.stderr, "fastpath: shut down in %v: %s drained\n", roundDuration(time.Since(began)), requests(tr.finished.Load()-finished))
		return err
	}
	// Downloads that did not finish in time are cut off; the middleware
	// records them as aborted as their handlers return.
	drained, cut := tr.finished.Load()-finished, tr.inFlight.Load()
	s.Logger.Warn("shutdown timeout: closing the connections still open", "timeout", s.ShutdownTimeout)
	err = srv.Close()
	// Close does not wait for handlers; a handler on a closed connection
	// fails its next write (or sees its request context canceled) and
	// returns.
	if !waitTimeout(&tr.handlers, handlerGrace) {
		s.Logger.Error("shutdown: handlers still running after their connections were closed", "grace", handlerGrace)
	}
	fmt.Fprintf(s.stderr, "fastpath: shut down in %v: %s drained, %d cut off at the %v -shutdown-timeout\n",
		roundDuration(time.Since(began)), requests(drained), cut, s.ShutdownTimeout)
	return err
}

// requests says how many requests, in words.
func requests(n int64) string {
	if n == 1 {
		return "1 in-flight request"
	}
	return fmt.Sprintf("%d in-flight requests", n)
}

// roundDuration rounds d for a person to read: to the microsecond under a
// second, to the millisecond above.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// handlerGrace bounds the wait for handlers once their connections are
// closed at shutdown: a handler that ignores both its failing writes and its
// request context must not keep the process alive forever.
const handlerGrace = 30 * time.Second

// waitTimeout waits for wg, and reports false if d passed first.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// tracker follows a server's connections and requests: for the shutdown
// line, for /debug/idle, and to log connections closed before they
// delivered a request.
type tracker struct {
	handlers sync.WaitGroup // running handlers
	inFlight atomic.Int64   // running handlers
	finished atomic.Int64   // handlers returned, ever

	mu    sync.Mutex
	conns map[net.Conn]*atomic.Bool // open connections: has a request reached the handler?
	idle  chan struct{}             // closed while no connection is open
}

func newTracker() *tracker {
	t := &tracker{conns: map[net.Conn]*atomic.Bool{}, idle: make(chan struct{})}
	close(t.idle)
	return t
}

// servedKey is the context key of a connection's served flag.
type servedKey struct{}

// connContext registers a new connection (http.Server.ConnContext).
func (t *tracker) connContext(ctx context.Context, c net.Conn) context.Context {
	served := new(atomic.Bool)
	t.mu.Lock()
	if len(t.conns) == 0 {
		t.idle = make(chan struct{})
	}
	t.conns[c] = served
	t.mu.Unlock()
	return context.WithValue(ctx, servedKey{}, served)
}

// connState forgets a connection once it is closed or hijacked
// (http.Server.ConnState), and reports whether it was closed before any
// request reached the handler.
func (t *tracker) connState(c net.Conn, st http.ConnState) (unserved bool) {
	if st != http.StateClosed && st != http.StateHijacked {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	served, ok := t.conns[c]
	if !ok {
		return false
	}
	delete(t.conns, c)
	if len(t.conns) == 0 {
		close(t.idle)
	}
	return st == http.StateClosed && !served.Load()
}

// start counts a request whose handler starts; the function it returns
// counts it finished.
func (t *tracker) start(r *http.Request) (done func()) {
	if served, ok := r.Context().Value(servedKey{}).(*atomic.Bool); ok {
		served.Store(true)
	}
	t.handlers.Add(1)
	t.inFlight.Add(1)
	return func() {
		t.finished.Add(1)
		t.inFlight.Add(-1)
		t.handlers.Done()
	}
}

// waitIdle waits until no connection is open, and returns how many are
// when ctx ends first.
func (t *tracker) waitIdle(ctx context.Context) (open int, err error) {
	t.mu.Lock()
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return 0, nil
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		return len(t.conns), ctx.Err()
	}
}

// serveMetrics serves metrics on /metrics of its own listener, which can be
// private while the files are public.
func serveMetrics(addr string, metrics http.Handler) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout}
	go srv.Serve(ln)
	return ln.Addr(), func() { srv.Close() }, nil
}

// idleWait bounds how long /debug/idle waits.
const idleWait = 90 * time.Second

// serveDebug serves net/http/pprof on its own listener, away from the
// public one, and /debug/idle, which answers once no connection to the
// public listener is open (or 503 after idleWait): what a test, or a drain
// check, waits on before it counts goroutines.
func serveDebug(addr string, stderr io.Writer, tr *tracker) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/idle", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), idleWait)
		defer cancel()
		if open, err := tr.waitIdle(ctx); err != nil {
			http.Error(w, fmt.Sprintf("%d connections still open after %v", open, idleWait), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "idle\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(stderr, "  debug:   http://%s/debug/pprof/\n", ln.Addr())
	return func() { srv.Close() }, nil
}
