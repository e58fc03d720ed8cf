package middleware

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxy is the configuration of WithTrustedProxy.
type trustedProxy struct {
	header  string // canonical: X-Forwarded-For, X-Real-Ip or Forwarded
	proxies []netip.Prefix
}

// clientAddress returns the client.address of r: the host of r.RemoteAddr,
// unless WithTrustedProxy is set, the peer is a trusted proxy, and the proxy
// header names a valid address.
func (c *config) clientAddress(r *http.Request) string {
	peer := clientAddress(r)
	if c.proxy == nil {
		return peer
	}
	ip, err := netip.ParseAddr(peer)
	if err != nil || !c.proxy.trusted(ip.Unmap()) {
		return peer
	}
	if a, ok := c.proxy.fromHeader(r.Header); ok {
		return a.String()
	}
	return peer
}

func (p *trustedProxy) trusted(ip netip.Addr) bool {
	for _, pfx := range p.proxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// fromHeader walks the header's addresses from the nearest hop back and
// returns the first one that is not a trusted proxy: addresses further back
// were written by whoever the client was and cannot be trusted. Anything that
// does not parse as an IP address ends the walk.
func (p *trustedProxy) fromHeader(h http.Header) (netip.Addr, bool) {
	var hops []string
	for _, v := range h.Values(p.header) {
		switch p.header {
		case "Forwarded":
			hops = append(hops, forwardedFor(v)...)
		default:
			hops = append(hops, strings.Split(v, ",")...)
		}
	}
	var last netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseHop(hops[i])
		if !ok {
			break
		}
		last = ip
		if !p.trusted(ip) {
			return ip, true
		}
	}
	return last, last.IsValid()
}

// parseHop parses one address of a proxy header: an IP, optionally with a
// port, IPv6 optionally in brackets, optionally quoted (Forwarded).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// forwardedFor returns the for= values of an RFC 7239 Forwarded header value,
// in order.
func forwardedFor(v string) []string {
	var out []string
	for _, elem := range strings.Split(v, ",") {
		for _, pair := range strings.Split(elem, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				out = append(out, val)
			}
		}
	}
	return out
}
