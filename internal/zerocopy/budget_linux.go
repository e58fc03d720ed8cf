package zerocopy

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Capability bits (include/uapi/linux/capability.h) that lift the pipe
// limits: CAP_SYS_RESOURCE lifts both fs.pipe-max-size and the per-user
// page limits, CAP_SYS_ADMIN only the page limits (fs/pipe.c,
// pipe_is_unprivileged_user).
const (
	capSysAdmin    = 21 // CAP_SYS_ADMIN
	capSysResource = 24 // CAP_SYS_RESOURCE
)

// budget is what the kernel lets this process's user have in pipes, read
// once: fs.pipe-max-size, fs.pipe-user-pages-soft and -hard, and whether the
// process is exempt from them.
type budget struct {
	page     int // bytes per page
	maxSize  int // the largest pipe to ask for, bytes: a power of two pages
	pages    int // pages the pool may hold; 0: no limit applies
	resource bool
	admin    bool
	soft     int // fs.pipe-user-pages-soft, pages (0: none)
	hard     int // fs.pipe-user-pages-hard, pages (0: none)
	sysMax   int // fs.pipe-max-size, bytes
}

// maxPipe is the largest pipe worth asking for: the measured CPU per GiB
// stops falling between 256 KiB and 1 MiB, and it is fs.pipe-max-size's
// default (see the README's proxy figures).
const maxPipe = 1 << 20

// readBudget reads the limits from /proc. A file it cannot read leaves the
// kernel's default in place (1 MiB, 16384 pages soft, no hard limit), and
// capabilities it cannot read count as absent, so the pool errs on the
// side of the limits.
func readBudget() budget {
	b := budget{
		page:   os.Getpagesize(),
		soft:   16384,
		sysMax: 1 << 20,
	}
	if v, ok := readSysctl("/proc/sys/fs/pipe-max-size"); ok {
		b.sysMax = v
	}
	if v, ok := readSysctl("/proc/sys/fs/pipe-user-pages-soft"); ok {
		b.soft = v
	}
	if v, ok := readSysctl("/proc/sys/fs/pipe-user-pages-hard"); ok {
		b.hard = v
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		b.resource, b.admin = effectiveCaps(status)
	}
	return b.derive()
}

// derive fills in maxSize and pages from the limits.
//
// pages is seven eighths of the smaller of the soft and hard limits, for a
// process that is subject to them: the limits count every pipe of the
// user, in every process, and a pipe the kernel creates while the user is
// over the soft limit gets 2 pages, so an eighth (2048 pages by default,
// 128 pipes of the default 64 KiB) is left to the user's other pipes.
func (b budget) derive() budget {
	b.maxSize = maxPipe
	if !b.resource && b.sysMax < b.maxSize {
		b.maxSize = b.sysMax
	}
	b.maxSize = floorPow2(b.maxSize/b.page) * b.page
	limit := 0
	if !b.resource && !b.admin {
		limit = b.soft
		if b.hard > 0 && (limit == 0 || b.hard < limit) {
			limit = b.hard
		}
	}
	b.pages = limit - limit/8
	return b
}

func readSysctl(path string) (int, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return v, err == nil && v >= 0
}

// effectiveCaps reads CAP_SYS_RESOURCE and CAP_SYS_ADMIN from the CapEff
// line of /proc/self/status.
func effectiveCaps(status []byte) (resource, admin bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return false, false
		}
		return caps&(1<<capSysResource) != 0, caps&(1<<capSysAdmin) != 0
	}
	return false, false
}

// floorPow2 returns the largest power of two at most n, or 0 for n < 1.
func floorPow2(n int) int {
	if n < 1 {
		return 0
	}
	p := 1
	for p <= n/2 {
		p *= 2
	}
	return p
}

// descriptorLimit returns RLIMIT_NOFILE's soft limit (the one open(2) and
// accept(2) fail at), or 0 when it cannot be read.
func descriptorLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}
