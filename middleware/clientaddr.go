package middleware

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// splitHostPort splits "host:port", "[v6]:port" or a bare host; port is 0
// when absent or invalid. It is the one parser of addresses here: the peer
// address (r.RemoteAddr), the Host header, and each hop of a proxy header.
func splitHostPort(hostport string) (host string, port int) {
	if !strings.Contains(hostport, ":") {
		return hostport, 0 // a bare name: SplitHostPort's error would allocate
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port (or not host:port at all): the whole is the host, without
		// the brackets of a bare IPv6 literal.
		if len(hostport) > 1 && hostport[0] == '[' && hostport[len(hostport)-1] == ']' {
			return hostport[1 : len(hostport)-1], 0
		}
		return hostport, 0
	}
	if n, err := strconv.ParseUint(p, 10, 16); err == nil {
		port = int(n)
	}
	return host, port
}

// trustedProxy is the configuration of WithTrustedProxy.
type trustedProxy struct {
	header  string // canonical: X-Forwarded-For, X-Real-Ip or Forwarded
	proxies []netip.Prefix
}

// clientAddress returns the client.address of r: the host of r.RemoteAddr
// (the peer address, unless a middleware before this one rewrote it),
// unless WithTrustedProxy is set, the peer is a trusted proxy, and the proxy
// header names a valid address.
func (c *config) clientAddress(r *http.Request) string {
	peer, _ := splitHostPort(r.RemoteAddr)
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
	host, _ := splitHostPort(strings.Trim(strings.TrimSpace(s), `"`))
	ip, err := netip.ParseAddr(host)
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
