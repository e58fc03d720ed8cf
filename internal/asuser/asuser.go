//go:build linux

// Package asuser runs a child process as a plain user, for the tests and
// measurements of what a service sees when it does not run as root: the
// kernel's per-user pipe limits (fs.pipe-user-pages-soft) and no
// capabilities.
package asuser

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// firstUID and lastUID bound the user ids FreeUID picks from: above the
// ranges distributions give to system and login accounts, below nobody
// (65534).
const (
	firstUID = 61000
	lastUID  = 65000
)

// Check returns why this process cannot start a child as another user, or
// nil. A process that is not root runs its children as itself, a plain
// user already.
func Check() error {
	if os.Geteuid() != 0 {
		return nil
	}
	cmd := exec.Command("/bin/true")
	Apply(cmd, firstUID)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot run a child as uid %d: %w", firstUID, err)
	}
	return nil
}

// FreeUID returns a user id that no process runs as, so that its per-user
// limits are all the child's. Outside root it returns the process's own.
func FreeUID() (int, error) {
	if os.Geteuid() != 0 {
		return os.Geteuid(), nil
	}
	used, err := usedUIDs()
	if err != nil {
		return 0, err
	}
	for uid := firstUID; uid < lastUID; uid++ {
		if !used[uid] {
			return uid, nil
		}
	}
	return 0, errors.New("asuser: every user id from 61000 to 65000 runs a process")
}

// usedUIDs returns the real user ids of the processes running.
func usedUIDs() (map[int]bool, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	used := make(map[int]bool)
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", d.Name(), "status"))
		if err != nil {
			continue // the process has exited
		}
		if uid, ok := statusUID(raw); ok {
			used[uid] = true
		}
	}
	return used, nil
}

// statusUID returns the real user id of a /proc/PID/status file.
func statusUID(status []byte) (int, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			uid, err := strconv.Atoi(f[0])
			return uid, err == nil
		}
	}
	return 0, false
}

// Apply makes cmd run as uid, with gid the same and no supplementary
// groups, when this process is root (the kernel then clears the child's
// capabilities); otherwise it leaves cmd to run as this process's user.
func Apply(cmd *exec.Cmd, uid int) {
	if os.Geteuid() != 0 {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}
}

// Executable copies the program at path into a new directory of the
// system's temporary directory that any user can enter and run it from (a
// go test binary's own directory is private to its user), and returns the
// copy and a function that removes it.
func Executable(path string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "fastpath-asuser")
	if err != nil {
		return "", nil, err
	}
	remove := func() { os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil {
		remove()
		return "", nil, err
	}
	in, err := os.Open(path)
	if err != nil {
		remove()
		return "", nil, err
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(path))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		remove()
		return "", nil, err
	}
	return dst, remove, nil
}
