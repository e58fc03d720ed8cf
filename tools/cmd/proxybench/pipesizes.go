//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// The pipe sizes scenario measures what internal/zerocopy's sizes are
// chosen from: the CPU per GiB of a bare splice loop, socket to pipe to
// socket, for each pipe size, against the 32 KiB read/write copy that
// httputil.ReverseProxy makes. A child process runs the loop alone between
// two loopback sockets; this process sends from a file by sendfile on one
// and reads the other.

// pipeSizes are the loops measured: 0 is the copy.
var pipeSizes = []int{0, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20}

// pipeSizeResult is one loop's figures.
type pipeSizeResult struct {
	size   int
	perGiB []time.Duration
	calls  int64 // system calls moving bytes, per GiB, the last round
}

func loopName(size int) string {
	if size == 0 {
		return "copy, 32 KiB buffer"
	}
	return fmt.Sprintf("splice, %d KiB pipe", size>>10)
}

// runPipeSizes measures each loop in interleaved rounds, moving total bytes
// from the file at path each time.
func (b *bench) runPipeSizes(path string, total int64) ([]*pipeSizeResult, error) {
	var list []*pipeSizeResult
	for _, size := range pipeSizes {
		list = append(list, &pipeSizeResult{size: size})
	}
	for round := range b.cfg.rounds {
		for _, r := range benchproc.Rotated(list, round) {
			fmt.Fprintf(b.cfg.progress, "round %d/%d: %s\n", round+1, b.cfg.rounds, loopName(r.size))
			cpu, calls, err := b.measureLoop(r.size, path, total)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", loopName(r.size), err)
			}
			r.perGiB = append(r.perGiB, benchproc.PerGiB(cpu, total))
			r.calls = calls * (1 << 30) / total
		}
	}
	return list, nil
}

// measureLoop runs one loop in a child and returns its CPU time and the
// system calls it made.
func (b *bench) measureLoop(size int, path string, total int64) (time.Duration, int64, error) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer up.Close()
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer down.Close()
	sent := make(chan error, 1)
	go func() {
		c, err := up.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		f, err := os.Open(path)
		if err != nil {
			sent <- err
			return
		}
		defer f.Close()
		for left := total; left > 0; {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				sent <- err
				return
			}
			n, err := io.Copy(c, io.LimitReader(f, left)) // sendfile
			left -= n
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	argv := []string{b.self, "-loop", strconv.Itoa(size), "-upstream", up.Addr().String() + "|" + down.Addr().String(), "-size", strconv.FormatInt(total, 10)}
	if b.pin {
		argv = benchproc.OnCPU(0, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	c, err := down.Accept()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, err
	}
	n, rerr := io.Copy(io.Discard, c)
	c.Close()
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("loop: %w", err)
	}
	if err := <-sent; err != nil {
		return 0, 0, err
	}
	if rerr != nil || n != total {
		return 0, 0, fmt.Errorf("read %d of %d bytes: %v", n, total, rerr)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, errors.New("no rusage")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	calls, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("the loop's call count %q: %w", out.String(), err)
	}
	return cpu, calls, nil
}

// runLoop is the child: it moves total bytes from the first address to the
// second through a pipe of size bytes, or copies them through a 32 KiB
// buffer for size 0, and prints the system calls it made.
func runLoop(size int, spec string, total int64) error {
	from, to, _ := strings.Cut(spec, "|")
	src, err := net.Dial("tcp", from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := net.Dial("tcp", to)
	if err != nil {
		return err
	}
	defer dst.Close()
	var calls int64
	if size == 0 {
		buf := make([]byte, 32<<10)
		for moved := int64(0); moved < total; {
			n, err := src.Read(buf)
			calls++
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return err
				}
				calls++
				moved += int64(n)
			}
			if err != nil {
				return err
			}
		}
	} else if calls, err = spliceLoop(src.(*net.TCPConn), dst.(*net.TCPConn), size, total); err != nil {
		return err
	}
	fmt.Println(calls)
	return nil
}

// spliceLoop moves total bytes from src to dst through a pipe of size
// bytes and returns the splice calls it made.
func spliceLoop(src, dst *net.TCPConn, size int, total int64) (int64, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return 0, err
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	got, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), 1031 /* F_SETPIPE_SZ */, uintptr(size))
	if errno != 0 || int(got) != size {
		return 0, fmt.Errorf("F_SETPIPE_SZ %d: got %d, %v", size, got, errno)
	}
	sr, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	dr, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	const flags = 0x1 | 0x2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK
	var calls int64
	for moved := int64(0); moved < total; {
		var n int64
		var serr error
		if err := sr.Read(func(fd uintptr) bool {
			n, serr = syscall.Splice(int(fd), nil, fds[1], nil, size, flags)
			calls++
			return serr != syscall.EAGAIN
		}); err != nil {
			return calls, err
		}
		if serr != nil || n == 0 {
			return calls, fmt.Errorf("splice from the socket: %d, %v", n, serr)
		}
		moved += n
		for n > 0 {
			var m int64
			if err := dr.Write(func(fd uintptr) bool {
				m, serr = syscall.Splice(fds[0], nil, int(fd), nil, int(n), flags)
				calls++
				return serr != syscall.EAGAIN
			}); err != nil {
				return calls, err
			}
			if serr != nil || m <= 0 {
				return calls, fmt.Errorf("splice to the socket: %d, %v", m, serr)
			}
			n -= m
		}
	}
	return calls, nil
}

// writePipeSizes writes the pipe sizes table.
func writePipeSizes(w io.Writer, list []*pipeSizeResult, total int64, rounds int) {
	fmt.Fprintf(w, "\nPipe sizes: a bare loop moving %d MiB between two loopback sockets in a child process (the upstream sends by sendfile); CPU of the child per GiB, median and quartiles of %d interleaved rounds:\n\n", total>>20, rounds)
	fmt.Fprintln(w, "| loop | CPU per GiB (quartiles) | vs copy | calls per GiB |")
	fmt.Fprintln(w, "|---|---|---|---|")
	base := benchproc.Median(list[0].perGiB)
	for _, r := range list {
		med := benchproc.Median(r.perGiB)
		q1, q3 := benchproc.Quartiles(r.perGiB)
		fmt.Fprintf(w, "| %s | %s (%s-%s) | %.2fx | %d |\n", loopName(r.size), ms(med), strings.TrimSuffix(ms(q1), " ms"), ms(q3), float64(med)/float64(base), r.calls)
	}
}
