// Package perrequest compares, per request, what fastpath's middlewares cost
// against the peers that emit the same signals, in one benchmark run on the
// harness fastpath's own benchmarks use (internal/benchkit):
//
//	go test ./tools/perrequest -run '^$' -bench . -count 6
//
// It lives in the tools module so that the library module does not depend on
// the peers.
package perrequest
