package proxy

import (
	"fmt"
	"io"
)

// headEndIn looks for the end of a response head in b (the empty line
// after the status line and header fields), checking only the line feeds
// at from and after: the bytes before from were searched already, and an
// end found among them would have been returned. It returns the head's
// length, or -1 when b holds no complete head yet. Lines end in LF with an
// optional CR before it, as net/http reads them; an empty first line is no
// end.
func headEndIn(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i >= 1 && b[i-1] == '\n':
			return i + 1
		case i >= 2 && b[i-1] == '\r' && b[i-2] == '\n':
			return i + 1
		}
	}
	return -1
}

// errHeadTooBig is a response head past what a round trip may read.
func errHeadTooBig(max int) error {
	return fmt.Errorf("fastpath/proxy: the upstream's response heads exceed MaxResponseHeaderBytes (%d bytes left)", max)
}

// readHead reads one response head of at most max bytes from the connection
// and not a byte more: a body that follows stays in the socket, whole, for
// splice(2). It peeks at what has arrived; when the head's end is among it,
// it reads exactly that far, and otherwise all of it (every byte before the
// end is head) and peeks again. Each byte consumed is counted in headRead.
func (pc *upConn) readHead(max int) ([]byte, error) {
	if max <= 0 {
		return nil, errHeadTooBig(max)
	}
	if pc.head == nil {
		pc.head = make([]byte, headBufSize)
	}
	if !pc.canPeek() {
		return pc.readHeadByByte(max)
	}
	have := 0
	for {
		room := min(len(pc.head), max)
		if have == room {
			if have >= max {
				return nil, errHeadTooBig(max)
			}
			grown := make([]byte, min(2*len(pc.head), max))
			copy(grown, pc.head[:have])
			pc.head = grown
			room = len(grown)
		}
		n, err := pc.peek(pc.head[have:room])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if have > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, io.EOF
		}
		take := n
		end := headEndIn(pc.head[:have+n], have)
		if end > 0 {
			take = end - have
		}
		if _, err := io.ReadFull(pc.conn, pc.head[have:have+take]); err != nil {
			return nil, err
		}
		have += take
		pc.headRead.Add(int64(take))
		if end > 0 {
			return pc.head[:end], nil
		}
	}
}

// readHeadByByte reads a head one byte at a time, for a connection that
// cannot be peeked at (one a custom DialContext wrapped): slow, but it never
// reads into the body either.
func (pc *upConn) readHeadByByte(max int) ([]byte, error) {
	var b [1]byte
	head := pc.head[:0]
	for {
		if _, err := io.ReadFull(pc.conn, b[:]); err != nil {
			if err == io.EOF && len(head) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		head = append(head, b[0])
		pc.headRead.Add(1)
		if b[0] == '\n' && headEndIn(head, len(head)-1) > 0 {
			pc.head = head[:cap(head)]
			return head, nil
		}
		if len(head) >= max {
			return nil, errHeadTooBig(max)
		}
	}
}
