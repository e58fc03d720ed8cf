package middleware

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// routeContext returns ctx with a chi routing context for routes when
// routes is not nil (the next handler is a chi router) and ctx has none
// yet, so that the route pattern chi matches is visible to routeOf after
// the router returns.
func routeContext(ctx context.Context, routes chi.Routes) context.Context {
	if routes != nil && chi.RouteContext(ctx) == nil {
		rctx := chi.NewRouteContext()
		rctx.Routes = routes
		ctx = context.WithValue(ctx, chi.RouteCtxKey, rctx)
	}
	return ctx
}

// routeOf returns the route pattern that served passed, the request the
// middleware handed on, once the handler has returned: WithRoute's, when its
// function gives one; else chi's, when a chi routing context is present;
// else muxRoute's. It never returns the raw path.
func (c *config) routeOf(passed *http.Request) string {
	if c.route != nil {
		if route := c.route(passed); route != "" {
			return route
		}
	}
	if rctx := chi.RouteContext(passed.Context()); rctx != nil && len(rctx.RoutePatterns) > 0 {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return muxRoute(passed)
}

// muxRoute returns the path of the ServeMux pattern net/http set on r
// ("[METHOD ][HOST]/PATH"): http.route is a path template, and the method
// and host have their own attributes. It is the one part of the route known
// before the handler runs (when the middleware is mounted per handler on a
// ServeMux), which is when Tracing names its span.
func muxRoute(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}
