//go:build linux

package benchproc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Descendant returns the deepest single child of pid: the program that
// taskset and strace run.
func Descendant(pid int) (int, error) {
	for {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			return pid, err
		}
		kids := strings.Fields(string(raw))
		if len(kids) == 0 {
			return pid, nil
		}
		p, err := strconv.Atoi(kids[0])
		if err != nil {
			return pid, err
		}
		pid = p
	}
}

// ProcCPU returns a process's CPU time: the run time of its threads from
// /proc/PID/task/*/schedstat (nanoseconds; getrusage's user plus system time
// adds up to the same), or, where the kernel has no schedstat, user plus
// system time from /proc/PID/stat (in clock ticks). The time of a thread
// that exits between two readings is lost; the servers measured keep their
// threads as long as they run.
func ProcCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if errors.Is(err, fs.ErrNotExist) && t.Name() == strconv.Itoa(pid) {
			return statCPU(pid)
		}
		if err != nil {
			continue // the thread has exited
		}
		d, err := parseSchedstat(raw)
		if err != nil {
			return 0, fmt.Errorf("task %s: %w", t.Name(), err)
		}
		total += d
	}
	return total, nil
}

// parseSchedstat reads the run time, the first field, of a schedstat file.
func parseSchedstat(raw []byte) (time.Duration, error) {
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0, errors.New("empty schedstat")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat: %w", err)
	}
	return time.Duration(ns), nil
}

func statCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(raw)
}

// parseStat reads utime plus stime, all threads, from a /proc/PID/stat line.
func parseStat(raw []byte) (time.Duration, error) {
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("no command name in /proc stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc stat utime: %w", err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc stat stime: %w", err)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// CanPin reports whether the commands can run servers and clients on CPUs
// of their own: the machine has two CPUs or more and taskset is installed.
func CanPin() bool {
	if runtime.NumCPU() < 2 {
		return false
	}
	_, err := exec.LookPath("taskset")
	return err == nil
}

// PinClient pins this process, the client of a benchmark, to CPU 1 when
// the servers can be pinned to CPU 0 (CanPin), and reports whether both
// are pinned. A pinning failure is told to progress, prefixed by name, and
// the run goes on unpinned.
func PinClient(progress io.Writer, name string) bool {
	if !CanPin() {
		return false
	}
	if err := PinProcess(1); err != nil {
		fmt.Fprintln(progress, name+": not pinning to CPUs:", err)
		return false
	}
	return true
}

// PinProcess binds every thread of this process to cpu; threads started
// later inherit the binding from the thread that starts them.
func PinProcess(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return err
		}
	}
	return nil
}

// OnCPU returns the command line that runs argv bound to cpu, by taskset
// (which execs argv, so the process keeps its pid).
func OnCPU(cpu int, argv ...string) []string {
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// Server is a server process a benchmark command measures, started by
// StartServer.
type Server struct {
	// Pid is the server's own process: beneath the strace that runs it,
	// when it is traced.
	Pid int

	cmd     *exec.Cmd
	stdin   io.Closer
	term    bool
	stopped bool
}

// StartServer starts cmd, a server that listens on addr and stops when its
// standard input closes or, with term (nginx), on SIGTERM, and waits until
// addr accepts connections. With traced, cmd is strace (or taskset) running
// the server, and Pid is found beneath it (Descendant). The caller sets
// cmd's Stdout and Stderr, and must call Stop, which also ends a server
// StartServer failed to find.
func StartServer(cmd *exec.Cmd, addr string, term, traced bool) (*Server, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, term: term}
	if err := WaitListening(addr); err != nil {
		return s, err
	}
	if traced {
		if s.Pid, err = Descendant(s.Pid); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Stop stops the server and waits for it; an exit by SIGTERM, asked for,
// is no error. Calls after the first do nothing.
func (s *Server) Stop() error {
	if s == nil || s.stopped {
		return nil
	}
	s.stopped = true
	s.stdin.Close()
	if s.term {
		// The server gets the signal, not the strace above it.
		unix.Kill(s.Pid, unix.SIGTERM)
	}
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if s.term && errors.As(err, &ee) {
		err = nil
	}
	return err
}
