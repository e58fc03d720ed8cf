//go:build !race

package main

// defaultFileSize is the size of the file served.
const defaultFileSize = 64 << 20

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
