package handlers

import (
	"bytes"
	"fmt"
	"io"
)

// headEnd returns the length of the response head at the start of b (the
// status line and header fields up to and including the empty line), or -1
// when b holds no complete head yet. Lines end in LF with an optional CR
// before it, as net/http reads them.
func headEnd(b []byte) int {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		line := b[start : start+i]
		if start > 0 && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			return start + i + 1
		}
		start += i + 1
	}
}

// readHead reads one response head from the connection and not a byte more:
// a body that follows stays in the socket, whole, for splice(2). It peeks at
// what has arrived; when the head's end is among it, it reads exactly that
// far, and otherwise all of it (every byte before the end is head) and peeks
// again.
func (pc *upConn) readHead(max int) ([]byte, error) {
	if pc.head == nil {
		pc.head = make([]byte, 4<<10)
	}
	if !pc.canPeek() {
		return pc.readHeadByByte(max)
	}
	have := 0
	for {
		if have == len(pc.head) {
			if have >= max {
				return nil, fmt.Errorf("fastpath/handlers: upstream response head exceeds %d bytes", max)
			}
			grown := make([]byte, min(2*len(pc.head), max))
			copy(grown, pc.head[:have])
			pc.head = grown
		}
		n, err := pc.peek(pc.head[have:])
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
		end := headEnd(pc.head[:have+n])
		if end > 0 {
			take = end - have
		}
		if _, err := io.ReadFull(pc.conn, pc.head[have:have+take]); err != nil {
			return nil, err
		}
		have += take
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
		if b[0] == '\n' && headEnd(head) > 0 {
			pc.head = head[:cap(head)]
			return head, nil
		}
		if len(head) >= max {
			return nil, fmt.Errorf("fastpath/handlers: upstream response head exceeds %d bytes", max)
		}
	}
}
