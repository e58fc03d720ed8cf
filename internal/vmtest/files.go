package vmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// File is a file Config.Files puts in the guest.
type File struct {
	// Path is where the guest finds it: absolute and clean, such as
	// /usr/sbin/nginx.
	Path string
	// Mode holds its permission bits; 0 means 0o644.
	Mode fs.FileMode
	// Source is the host file it copies, read when the initramfs is
	// packed; when Source is "", Data is its content.
	Source string
	Data   []byte
}

// reservedPaths are the files the harness writes itself.
var reservedPaths = []string{"/init", "/test", "/program", "/bin/busybox"}

// mountedDirs are the directories the guest's /init mounts over: a File
// there would be hidden.
var mountedDirs = []string{"/proc", "/sys", "/dev", "/tmp", "/modules"}

// checkFiles checks Config.Files and turns them into initramfs entries; a
// File that copies the same host file as one before it is left out.
func checkFiles(files []File) ([]guestFile, error) {
	seen := map[string]File{}
	var out []guestFile
	for _, f := range files {
		p := f.Path
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("vmtest: File path %q is not an absolute, clean file path", p)
		}
		for _, r := range reservedPaths {
			if p == r {
				return nil, fmt.Errorf("vmtest: File path %s is the harness's own", p)
			}
		}
		for _, d := range mountedDirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return nil, fmt.Errorf("vmtest: File path %s is under %s, which the guest mounts over or the harness fills", p, d)
			}
		}
		if prev, ok := seen[p]; ok {
			// Two programs' Executable lists share libraries.
			if prev.Source != "" && prev.Source == f.Source && prev.Mode == f.Mode {
				continue
			}
			return nil, fmt.Errorf("vmtest: two different Files at %s", p)
		}
		seen[p] = f
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		out = append(out, guestFile{name: p[1:], perm: mode, data: f.Data, src: f.Source})
	}
	return out, nil
}

// Executable returns the Files that let the host program at file run in the
// guest: the program itself at the same path, and its ELF interpreter and
// every shared library it loads, each at the path ldd(1) found it at on the
// host (the dynamic loader of a guest without /etc/ld.so.cache searches the
// same system directories). A statically linked program is one File. The
// guest has no /etc: add what the program reads there (/etc/passwd, say)
// as Files of its own.
func Executable(file string) ([]File, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	files := []File{{Path: abs, Mode: 0o755, Source: abs}}
	if _, err := exec.LookPath("ldd"); err != nil {
		return nil, unavailable("ldd is not installed, so the libraries of %s cannot be found", abs)
	}
	out, err := exec.Command("ldd", abs).CombinedOutput()
	if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
		return files, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vmtest: ldd %s: %v: %s", abs, err, bytes.TrimSpace(out))
	}
	libs, err := parseLdd(out)
	if err != nil {
		return nil, fmt.Errorf("vmtest: ldd %s: %w", abs, err)
	}
	for _, l := range libs {
		if l != abs {
			files = append(files, File{Path: l, Mode: 0o755, Source: l})
		}
	}
	return files, nil
}

// parseLdd reads the libraries' paths from ldd's output:
//
//	linux-vdso.so.1 (0x00007ffd...)
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f...)
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)
//	libmissing.so.1 => not found
//
// The vDSO is the kernel's, not a file; a library not found is an error.
func parseLdd(out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, target, arrow := strings.Cut(line, " => ")
		if arrow {
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("library %s not found", name)
			}
			line = target
		}
		p, _, _ := strings.Cut(line, " (")
		if !path.IsAbs(p) {
			continue // the vDSO, which has no file
		}
		libs = append(libs, p)
	}
	return libs, sc.Err()
}
