package middleware

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// observer is one fastpath middleware's part in a request.
type observer interface {
	// start runs before the next handler, with the request the middleware
	// received and the context it will pass on, and returns that context,
	// possibly with more in it. The request is made once, from the context
	// all have added to.
	start(rec *record, r *http.Request, ctx context.Context) context.Context
	// end runs once the next handler has returned or panicked; r is the
	// request start returned.
	end(rec *record, r *http.Request)
}

// handler runs next with the request's shared record and reports to obs.
type handler struct {
	next   http.Handler
	routes chi.Routes // next itself, when it is a chi router
	cfg    *config
	obs    observer
}

func newHandler(next http.Handler, cfg *config, obs observer) http.Handler {
	h := &handler{next: next, cfg: cfg, obs: obs}
	h.routes, _ = next.(chi.Routes)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.skip != nil && h.cfg.skip(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	rec, w, ctx, created := begin(w, r, h.routes)
	if rec.ktls != nil && rec.ktls.fill && r.TLS == nil {
		// Kernel TLS beneath Listener's connection: net/http sees a
		// plain connection and leaves r.TLS nil; the middlewares and the
		// handler see the session, as they would with crypto/tls.
		withTLS := *r
		withTLS.TLS = &rec.ktls.cs
		r = &withTLS
	}
	passed := r
	if ctx = h.obs.start(rec, r, ctx); ctx != r.Context() {
		passed = r.WithContext(ctx)
		if created && passed.Body != nil && passed.Body != http.NoBody {
			passed.Body = &countingBody{ReadCloser: passed.Body, n: &rec.reqBody}
		}
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		// A panic is recorded, reported and re-raised unchanged, so an outer
		// recoverer and net/http see it (http.ErrAbortHandler included). The
		// original frames are still on the stack while this runs, so a stack
		// trace taken further out still shows where it happened.
		v := recover()
		rec.recovered(v)
		rec.finish(passed, r.Context(), h.cfg)
		h.obs.end(rec, passed)
		if v != nil {
			panic(v)
		}
	}()
	h.next.ServeHTTP(w, passed)
	returned = true
	rec.finish(passed, r.Context(), h.cfg)
	h.obs.end(rec, passed)
}
