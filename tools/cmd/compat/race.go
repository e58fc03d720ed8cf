//go:build race

package main

// defaultFileSize is the size of the file served. The race detector slows
// compression about thirtyfold, so race-instrumented runs serve a smaller
// file; the table does not depend on the size (shares are rounded to 0.1%,
// sizes are compared, not printed).
const defaultFileSize = 4 << 20

// raceEnabled reports whether the race detector is on.
const raceEnabled = true
