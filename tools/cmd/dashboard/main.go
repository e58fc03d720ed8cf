// Command dashboard makes the README's picture of the Grafana dashboard in
// deploy/grafana from a real run, as Grafana itself is not at hand: it runs
// examples/fileserver and a second server with the same fastpath stack, has
// a real Prometheus scrape both (with the rules of deploy/prometheus loaded
// and exemplar storage on), drives traffic at them for three phases, and
// then plots the dashboard's own queries, fetched from that Prometheus over
// the whole run, into a PNG.
//
// The second server is the incident: its /downloads/* route serves files
// through handlers.FileServer, and during the middle phase a "harmless"
// byte-counting wrapper (a struct embedding http.ResponseWriter) sits in
// front of it and hides io.ReaderFrom, so every byte is copied. Its /thumbs/*
// route serves 2 KiB files: on the fast path, yet at a byte share of 75%
// (net/http writes the first 512 bytes of a body itself); its /api/items
// answers 503 to one request in five.
//
// Usage, from the repository root (needs prometheus on $PATH: Debian's
// prometheus package):
//
//	go run ./tools/cmd/dashboard -o docs/dashboard.png [-phase 3m]
//
// Everything listens on 127.0.0.1 and stops by itself; the run takes three
// phases and about a minute more.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	out := flag.String("o", "docs/dashboard.png", "the PNG to write")
	phase := flag.Duration("phase", 3*time.Minute, "how long each phase lasts: healthy, fast path lost, restored")
	flag.Parse()
	if *phase < 30*time.Second || *phase > 30*time.Minute {
		fmt.Fprintln(os.Stderr, "dashboard: -phase must be between 30s and 30m")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3**phase+5*time.Minute)
	defer cancel()
	if err := run(ctx, *out, *phase); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}
