package benchproc

import (
	"fmt"
	"net"
	"time"
)

// FreeAddr returns a loopback address, "127.0.0.1:PORT", on a port that was
// free a moment ago, for a server process to listen on.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitListening waits until addr accepts connections, for at most 30 s.
func WaitListening(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start listening in 30s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
}
