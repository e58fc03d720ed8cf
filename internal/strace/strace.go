// Package strace runs a command under strace(1) and sums what it saw, so
// tests and benchmarks can prove which system calls moved the bytes.
package strace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Check reports whether strace can trace a child process on this machine.
// The error says why not: strace is missing, or ptrace is refused (as in
// some containers).
func Check() error {
	path, err := exec.LookPath("strace")
	if err != nil {
		return fmt.Errorf("strace is not installed: %w", err)
	}
	out, err := exec.Command(path, "-f", "-qq", "-e", "trace=none", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("strace cannot trace here (ptrace refused?): %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Command returns a command that runs name with args under strace, following
// threads and children (-f), tracing only the given system calls and writing
// the trace to out.
func Command(ctx context.Context, out string, syscalls []string, name string, args ...string) *exec.Cmd {
	sargs := []string{"-f", "-qq", "-e", "signal=none", "-e", "trace=" + strings.Join(syscalls, ","), "-o", out, "--", name}
	return exec.CommandContext(ctx, "strace", append(sargs, args...)...)
}

// Calls is what a trace recorded for one system call.
type Calls struct {
	Count  int64 // completed calls
	Errors int64 // calls that returned -1
	Sum    int64 // sum of the non-negative return values: bytes, for I/O calls
}

// Summary maps system call names to what the trace recorded for them.
type Summary map[string]Calls

// Total returns the calls and bytes of the named system calls together.
func (s Summary) Total(names ...string) Calls {
	var t Calls
	for _, n := range names {
		c := s[n]
		t.Count += c.Count
		t.Errors += c.Errors
		t.Sum += c.Sum
	}
	return t
}

// Details describes the named system calls the trace recorded, in that
// order, each as " name=count (errors errors, sum bytes)"; names with no
// calls are left out.
func (s Summary) Details(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		if c, ok := s[n]; ok && c != (Calls{}) {
			fmt.Fprintf(&b, " %s=%d (%d errors, %d bytes)", n, c.Count, c.Errors, c.Sum)
		}
	}
	return b.String()
}

// ParseFile reads a trace written by Command.
func ParseFile(path string) (Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := Summary{}
	pending := map[string]string{} // pid -> system call left unfinished
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := s.parseLine(sc.Text(), pending); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return s, sc.Err()
}

// parseLine reads one line of `strace -f` output:
//
//	1234 sendfile(7, 9, NULL, 4194304) = 4194304
//	1234 sendfile(7, 9, NULL, 4194304 <unfinished ...>
//	1234 <... sendfile resumed>) = 131072
//	1234 write(7, "..."..., 512) = -1 EAGAIN (Resource temporarily unavailable)
//	1234 ???( <detached ...>
func (s Summary) parseLine(line string, pending map[string]string) error {
	pid, rest, ok := strings.Cut(line, " ")
	if !ok {
		return nil
	}
	rest = strings.TrimSpace(rest)
	var name string
	switch {
	case strings.HasPrefix(rest, "<... "):
		name, _, _ = strings.Cut(strings.TrimPrefix(rest, "<... "), " ")
		delete(pending, pid)
	case strings.HasSuffix(rest, "<detached ...>"):
		// strace let go of a thread blocked in a call as the process
		// exited; the call never returned.
		return nil
	case strings.HasSuffix(rest, "<unfinished ...>"):
		n, _, ok := strings.Cut(rest, "(")
		if ok {
			pending[pid] = n
		}
		return nil
	default:
		n, _, ok := strings.Cut(rest, "(")
		if !ok || strings.HasPrefix(rest, "+++") || strings.HasPrefix(rest, "---") {
			return nil
		}
		name = n
	}
	// strace pads the arguments before "= result" to align the results.
	i := strings.LastIndex(rest, "= ")
	if i < 0 || !strings.HasSuffix(strings.TrimRight(rest[:i], " "), ")") {
		return errors.New("no result in line: " + line)
	}
	ret, _, _ := strings.Cut(rest[i+len("= "):], " ")
	c := s[name]
	c.Count++
	if ret == "?" {
		s[name] = c
		return nil
	}
	n, err := strconv.ParseInt(ret, 0, 64)
	if err != nil {
		return fmt.Errorf("bad result %q in line: %s", ret, line)
	}
	if n < 0 {
		c.Errors++
	} else {
		c.Sum += n
	}
	s[name] = c
	return nil
}
