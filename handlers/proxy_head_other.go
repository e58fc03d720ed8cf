//go:build !unix

package handlers

func (pc *upConn) canPeek() bool { return false }

func (pc *upConn) peek(buf []byte) (int, error) { panic("unreachable") }

// idleAndClean cannot look at the socket here without reading it.
func (pc *upConn) idleAndClean() bool { return true }
