package middleware

import (
	"sync"
	"sync/atomic"
)

// maxCached bounds each cache; past it, values are made per request. Every
// key is made of bounded values (normalised methods, route patterns, status
// codes), so the bound is only a guard against a router that returns raw
// paths as routes.
const maxCached = 4096

// cache maps keys to values made once, so the common case looks a value up
// without locking or allocating.
type cache[K comparable, V any] struct {
	m sync.Map // K -> V
	n atomic.Int64
}

// get returns k's value, made by mk the first time.
func (c *cache[K, V]) get(k K, mk func() V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v := mk()
	if c.n.Load() >= maxCached {
		return v
	}
	if prev, loaded := c.m.LoadOrStore(k, v); loaded {
		return prev.(V)
	}
	c.n.Add(1)
	return v
}
