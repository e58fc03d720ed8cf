package middleware

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures Logger, Metrics and Tracing. The zero configuration
// works; an option that does not concern a middleware is ignored by it.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is the resolved set of options of one middleware.
type config struct {
	skip    func(*http.Request) bool
	level   func(status int, errorType ErrorType) slog.Level
	headers []loggedHeader
	query   bool
	proxy   *trustedProxy

	route    func(*http.Request) string
	spanName func(r *http.Request, route string) string
	attrs    func(*http.Request) []attribute.KeyValue

	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
	propagators    propagation.TextMapPropagator
}

// loggedHeader is a request header Logger adds, with its log key computed once.
type loggedHeader struct {
	name   string // canonical MIME header key
	key    string // "http.request.header.<lowercase name>"
	redact bool
}

func newConfig(opts []Option) config {
	c := config{level: defaultLevel}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithSkip makes the middleware pass requests for which skip returns true
// straight to the next handler, unobserved: health checks and probes, for
// example. skip runs before the next handler and must not read the body.
func WithSkip(skip func(r *http.Request) bool) Option {
	return optionFunc(func(c *config) { c.skip = skip })
}

// WithLevel sets how Logger chooses a record's level from the response
// status and its ErrorType. A status of 0 means none was observed (a
// hijacked connection). The default logs Error for 5xx and for responses
// cut short through the server's fault, Warn for a send timeout and for
// 4xx, and Info for the rest, a client that left early included: on a
// download or video server, clients that cancel (a player seeking) are
// normal traffic.
func WithLevel(level func(status int, errorType ErrorType) slog.Level) Option {
	return optionFunc(func(c *config) {
		if level != nil {
			c.level = level
		}
	})
}

func defaultLevel(status int, errorType ErrorType) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case errorType == ErrorTypeClientAborted:
		return slog.LevelInfo
	case errorType == ErrorTypeSendTimeout:
		return slog.LevelWarn
	case errorType != "":
		return slog.LevelError
	case status >= 400:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// redactedHeaders are never logged in clear, whatever WithRequestHeaders asks.
var redactedHeaders = map[string]bool{
	"Authorization":       true,
	"Cookie":              true,
	"Set-Cookie":          true,
	"Proxy-Authorization": true,
}

// WithRequestHeaders makes Logger add the named request headers, when present,
// under the OpenTelemetry key http.request.header.<lowercase name>. The values
// of Authorization, Cookie, Set-Cookie and Proxy-Authorization are always
// replaced by "[REDACTED]".
func WithRequestHeaders(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, n := range names {
			name := http.CanonicalHeaderKey(strings.TrimSpace(n))
			if name == "" || name == "Range" { // Range is always logged
				continue
			}
			c.headers = append(c.headers, loggedHeader{
				name:   name,
				key:    keyHeaderPrefix + strings.ToLower(name),
				redact: redactedHeaders[name],
			})
		}
	})
}

// WithURLQuery makes Logger add the query string under url.query. It is left
// out by default because query strings often carry tokens.
func WithURLQuery() Option {
	return optionFunc(func(c *config) { c.query = true })
}

// WithMeterProvider sets the provider Metrics takes its meter from. The
// default, and a nil provider, is otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithTracerProvider sets the provider Tracing takes its tracer from. The
// default, and a nil provider, is otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithPropagators sets the propagators Tracing extracts the parent span
// context with. The default, and nil, is otel.GetTextMapPropagator().
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.propagators = p })
}

// WithTrustedProxy makes client.address (in logs and spans) the client's
// address as a trusted reverse proxy reports it in header, which must be
// X-Forwarded-For, X-Real-IP or Forwarded. The header is believed only when
// the request's peer address is inside one of proxies, and only as far back
// as the hops are themselves trusted proxies: the address recorded is the
// nearest one that is not. Without this option, client.address is the peer
// address, whatever headers clients send. (chi's RealIP middleware rewrites
// the peer address itself; fastpath then records what it wrote.)
//
// WithTrustedProxy panics if header is not one of the three, or if no proxy
// prefix is given.
func WithTrustedProxy(header string, proxies ...netip.Prefix) Option {
	h := http.CanonicalHeaderKey(header)
	switch h {
	case "X-Forwarded-For", "X-Real-Ip", "Forwarded":
	default:
		panic(fmt.Sprintf("fastpath/middleware: WithTrustedProxy: header %q is not X-Forwarded-For, X-Real-IP or Forwarded", header))
	}
	if len(proxies) == 0 {
		panic("fastpath/middleware: WithTrustedProxy: no trusted proxy prefixes")
	}
	p := &trustedProxy{header: h}
	for _, pfx := range proxies {
		p.proxies = append(p.proxies, pfx.Masked())
	}
	return optionFunc(func(c *config) { c.proxy = p })
}

// WithRoute makes the middleware take http.route from route, for routers
// other than chi and ServeMux. route runs once the handler has returned,
// with the request the middleware passed on, and returns the pattern that
// matched ("/users/{id}"); when it returns "", the route is chi's or
// ServeMux's as without the option. It must return a
// pattern, never the raw path: the route is an attribute of every metric,
// and a raw path makes their cardinality unbounded.
//
// Routers that keep the matched route in the context of the request they
// hand their handlers are read from inside: mount the middleware within the
// router, as with gorilla/mux's r.Use, and read the route there:
//
//	r := mux.NewRouter()
//	r.Use(middleware.Logger(l, middleware.WithRoute(func(r *http.Request) string {
//		if rt := mux.CurrentRoute(r); rt != nil {
//			tmpl, _ := rt.GetPathTemplate()
//			return tmpl
//		}
//		return ""
//	})))
//
// The route is decided once per request, by the innermost fastpath
// middleware that finds one, and shared by the others.
func WithRoute(route func(r *http.Request) string) Option {
	return optionFunc(func(c *config) { c.route = route })
}

// WithSpanName makes Tracing name its spans with name instead of the
// conventions' "{method} {route}". name is called when the span starts, with
// the route known then (often ""), and again once the handler has returned,
// with the route that matched; the span is renamed if the name changed. Like
// the default, a name must not contain the raw path or other unbounded
// values: backends group spans by name.
func WithSpanName(name func(r *http.Request, route string) string) Option {
	return optionFunc(func(c *config) { c.spanName = name })
}
