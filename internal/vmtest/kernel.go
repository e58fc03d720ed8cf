package vmtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// DefaultMetapackage is the Debian package whose dependency names the
// kernel the harness boots when no kernel package is given: the newest
// stable kernel image of the distribution the apt lists describe.
const DefaultMetapackage = "linux-image-amd64"

// kernel is an unpacked kernel package, ready to boot.
type kernel struct {
	pkg     string // package name, such as linux-image-6.1.0-57-amd64
	release string // uname -r, the directory under lib/modules
	vmlinux string // the image QEMU boots: the uncompressed ELF, or vmlinuz
	root    string // where the package is unpacked
	mods    map[string]string
	builtin map[string]bool
}

// resolvePackage returns the kernel image package the metapackage depends on,
// as apt-cache depends reports it.
func resolvePackage(meta string) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", unavailable("apt-cache is not installed, so %s cannot be resolved", meta)
	}
	out, err := exec.Command("apt-cache", "depends", meta).CombinedOutput()
	if err != nil {
		return "", unavailable("apt-cache depends %s: %v: %s", meta, err, bytes.TrimSpace(out))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", unavailable("apt-cache depends %s names no linux-image package (run apt-get update): %s", meta, bytes.TrimSpace(out))
}

// lockDir takes an exclusive lock on dir/.lock, so test processes of
// several packages preparing the same cache wait for one another.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// fetchKernel makes sure the package is downloaded and unpacked under
// cache/pkg and returns it. Each step leaves a finished result or nothing:
// work happens in temporary names that are renamed into place.
func fetchKernel(cache, pkg string) (*kernel, error) {
	dir := filepath.Join(cache, pkg)
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	root := filepath.Join(dir, "root")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		deb, err := download(dir, pkg)
		if err != nil {
			return nil, err
		}
		tmp := root + ".tmp"
		os.RemoveAll(tmp)
		if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("vmtest: dpkg-deb -x %s: %v: %s", deb, err, bytes.TrimSpace(out))
		}
		if err := os.Rename(tmp, root); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}

	k := &kernel{pkg: pkg, root: root}
	releases, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(releases) == 0 {
		releases, _ = filepath.Glob(filepath.Join(root, "usr", "lib", "modules", "*"))
	}
	if len(releases) != 1 {
		return nil, fmt.Errorf("vmtest: %s has %d module trees, want 1", pkg, len(releases))
	}
	k.release = filepath.Base(releases[0])
	vmlinuz := filepath.Join(root, "boot", "vmlinuz-"+k.release)
	if _, err := os.Stat(vmlinuz); err != nil {
		return nil, fmt.Errorf("vmtest: %s has no kernel image: %w", pkg, err)
	}
	k.vmlinux = filepath.Join(dir, "vmlinux")
	if _, err := os.Stat(k.vmlinux); err != nil {
		if err := extractVmlinux(vmlinuz, k.vmlinux); err != nil {
			// QEMU boots the compressed image too, only slower.
			k.vmlinux = vmlinuz
		}
	}
	if err := k.indexModules(releases[0]); err != nil {
		return nil, err
	}
	return k, nil
}

// download runs apt-get download in dir unless the .deb is already there.
func download(dir, pkg string) (string, error) {
	if debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb")); len(debs) == 1 {
		return debs[0], nil
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", unavailable("%s is not installed, so kernel package %s cannot be fetched", tool, pkg)
		}
	}
	cmd := exec.Command("apt-get", "download", "-q", pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", unavailable("apt-get download %s: %v: %s", pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("vmtest: apt-get download %s left %d packages in %s", pkg, len(debs), dir)
	}
	return debs[0], nil
}

// xzMagic starts an xz stream (the .xz file format, section 2.1.1.1).
var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// extractVmlinux writes the ELF kernel inside a bzImage whose payload is
// xz-compressed (Debian's): after the real-mode setup code and the
// decompressor comes one xz stream holding vmlinux. The uncompressed ELF
// boots through its PVH entry point, skipping the decompression that costs
// seconds under emulation.
func extractVmlinux(vmlinuz, dst string) error {
	img, err := os.ReadFile(vmlinuz)
	if err != nil {
		return err
	}
	i := bytes.Index(img, xzMagic)
	if i < 0 {
		return errors.New("vmtest: no xz stream in " + vmlinuz)
	}
	if _, err := exec.LookPath("xz"); err != nil {
		return err
	}
	cmd := exec.Command("xz", "-dc", "--single-stream")
	cmd.Stdin = bytes.NewReader(img[i:])
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("vmtest: xz: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if !bytes.HasPrefix(out.Bytes(), []byte(elf.ELFMAG)) {
		return errors.New("vmtest: the xz stream in " + vmlinuz + " is not an ELF image")
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// moduleName is a module's name as the kernel knows it: "-" and "_" are the
// same character in module names.
func moduleName(s string) string {
	s = filepath.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// indexModules maps every module file of the release by name, and reads
// which modules are built in.
func (k *kernel) indexModules(dir string) error {
	k.mods = map[string]string{}
	k.builtin = map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			k.mods[moduleName(p)] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" {
			k.builtin[moduleName(l)] = true
		}
	}
	return nil
}

// moduleOrder returns the files to insmod, in order, for the named modules:
// each module's dependencies (its .modinfo "depends=" field) come first, and
// each module once. Built-in modules are skipped. The kernel in a bare
// initramfs loads nothing by itself: no modprobe runs, so neither symbol
// dependencies nor the crypto algorithms a module asks for at run time
// arrive unless listed.
func (k *kernel) moduleOrder(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, from []string) error
	visit = func(name string, from []string) error {
		name = moduleName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("vmtest: module dependency cycle: %s", strings.Join(append(from, name), " -> "))
		case 2:
			return nil
		}
		if k.builtin[name] {
			state[name] = 2
			return nil
		}
		p, ok := k.mods[name]
		if !ok {
			return fmt.Errorf("vmtest: kernel %s has no module %s", k.release, name)
		}
		state[name] = 1
		data, err := k.moduleData(p)
		if err != nil {
			return err
		}
		deps, err := moduleDepends(data)
		if err != nil {
			return fmt.Errorf("vmtest: %s: %w", p, err)
		}
		for _, d := range deps {
			if err := visit(d, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleData returns a module file's contents, decompressed.
func (k *kernel) moduleData(p string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko"):
		return os.ReadFile(p)
	case strings.HasSuffix(p, ".xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(p, ".gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("vmtest: unknown module file %s", p)
	}
	if _, err := exec.LookPath(tool); err != nil {
		return nil, unavailable("%s is not installed, so module %s cannot be decompressed", tool, filepath.Base(p))
	}
	out, err := exec.Command(tool, "-dc", p).Output()
	if err != nil {
		return nil, fmt.Errorf("vmtest: %s -dc %s: %w", tool, p, err)
	}
	return out, nil
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section:
// NUL-separated key=value strings.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, errors.New("no .modinfo section")
	}
	info, err := s.Data()
	if err != nil {
		return nil, err
	}
	for kv := range bytes.SplitSeq(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for d := range strings.SplitSeq(string(v), ",") {
				if d != "" && !slices.Contains(deps, d) {
					deps = append(deps, d)
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}
