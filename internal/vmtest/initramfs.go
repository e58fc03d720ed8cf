package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
// each entry is a 110-byte ASCII header of "070701" and thirteen 8-digit hex
// fields, the NUL-terminated name padded to a multiple of 4 bytes, then the
// data padded the same way; "TRAILER!!!" ends the archive. The harness writes
// it itself so the host needs no cpio(1).
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriter(w), ino: 1}
}

// Mode bits of the newc header's mode field (stat(2) values).
const (
	cpioDir     = 0o040000
	cpioRegular = 0o100000
	cpioCharDev = 0o020000
)

func (c *cpioWriter) header(name string, mode, size, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	// Fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with the NUL), check.
	_, c.err = fmt.Fprintf(c.w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	if c.err != nil {
		return
	}
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) write(p []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(p)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir adds a directory.
func (c *cpioWriter) Dir(name string) { c.header(name, cpioDir|0o755, 0, 0, 0) }

// CharDev adds a character device node, such as /dev/console, which the
// kernel opens for init's standard streams before any devtmpfs is mounted.
func (c *cpioWriter) CharDev(name string, major, minor uint32) {
	c.header(name, cpioCharDev|0o600, 0, major, minor)
}

// File adds a regular file with data.
func (c *cpioWriter) File(name string, perm fs.FileMode, data []byte) {
	c.header(name, cpioRegular|uint32(perm.Perm()), uint32(len(data)), 0, 0)
	c.write(data)
	c.pad(len(data))
}

// CopyFile adds the file at src under name, streaming it.
func (c *cpioWriter) CopyFile(name string, perm fs.FileMode, src string) {
	if c.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.err = err
		return
	}
	if st.Size() >= 1<<32 {
		c.err = fmt.Errorf("vmtest: %s is too large for a newc cpio entry", src)
		return
	}
	c.header(name, cpioRegular|uint32(perm.Perm()), uint32(st.Size()), 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.Copy(c.w, f)
	if err == nil && n != st.Size() {
		err = fmt.Errorf("vmtest: %s changed size while it was copied", src)
	}
	if err != nil {
		c.err = err
		return
	}
	c.pad(int(n))
}

// Close writes the trailer and flushes.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// guestFile is a file the initramfs carries: data inline or copied from a
// host path.
type guestFile struct {
	name string // path in the guest, without the leading slash
	perm fs.FileMode
	data []byte
	src  string
}

// writeInitramfs writes an initramfs holding the directories of every file,
// /dev/console, and the files.
func writeInitramfs(w io.Writer, files []guestFile) error {
	c := newCPIOWriter(w)
	dirs := map[string]bool{}
	var mkdirs func(d string)
	mkdirs = func(d string) {
		if d == "." || d == "/" || d == "" || dirs[d] {
			return
		}
		mkdirs(path.Dir(d))
		dirs[d] = true
		c.Dir(d)
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp"} {
		mkdirs(d)
	}
	// The console is character device 5:1 (Documentation/admin-guide/devices.txt).
	c.CharDev("dev/console", 5, 1)
	for _, f := range files {
		mkdirs(path.Dir(f.name))
		if f.src != "" {
			c.CopyFile(f.name, f.perm, f.src)
		} else {
			c.File(f.name, f.perm, f.data)
		}
	}
	return c.Close()
}
