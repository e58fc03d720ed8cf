//go:build !unix

package proxy

func (pc *upConn) canPeek() bool { return false }

func (pc *upConn) peek(buf []byte) (int, error) { panic("unreachable") }

// pending cannot look at the socket here without reading it.
func (pc *upConn) pending() bool { return false }

// idleAndClean cannot look at the socket here without reading it, so it
// cannot vouch for any connection: none is reused.
func (pc *upConn) idleAndClean() bool { return false }

// sound cannot look at the socket here: a failed splice is taken for the
// client's.
func (pc *upConn) sound() bool { return true }
