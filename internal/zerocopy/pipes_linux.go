package zerocopy

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The sizes a pipe may have, as measured on loopback (CPU per GiB of the
// splice loop against a 32 KiB read/write copy; see the README's proxy
// figures): a pipe moves at most its size per pair of splice(2) calls, so
// below the copy's 32 KiB it makes more calls than the copy it replaces and
// saves nothing (16 KiB measured level with the copy, 8 KiB above it).
const (
	// minPipe is the smallest pipe spliced through: one with fewer bytes
	// than the copy's buffer is closed and the body copied.
	minPipe = 32 << 10
	// startWindow is what a transfer moves per pair of calls at first,
	// the kernel's default pipe size (PIPE_DEF_BUFFERS pages): it doubles
	// while both sockets keep up (see transfer.turn).
	startWindow = 64 << 10
	// idleTimeout closes a pipe no transfer has used for this long.
	// Making one costs pipe2, fcntl and two closes (about 8 µs), so a
	// pipe reused at least once a second pays its keep.
	idleTimeout = time.Second
)

const (
	fSetPipeSz = 1031 // F_SETPIPE_SZ (include/uapi/linux/fcntl.h: F_LINUX_SPECIFIC_BASE + 7)
	fGetPipeSz = 1032 // F_GETPIPE_SZ (F_LINUX_SPECIFIC_BASE + 8)
)

// pipe is a kernel pipe that bytes pass through between two sockets.
type pipe struct {
	r, w      int
	size      int // the capacity, as the kernel reports it
	data      int // bytes in the pipe: nonzero only after a failed pump
	idleSince time.Time
}

// pool keeps the pipes of all transfers, within the budget of the user's
// pipe pages and of descriptors, and closes those idle for idleTimeout.
type pool struct {
	b           budget
	idleTimeout time.Duration
	fdLimit     func() int                     // RLIMIT_NOFILE; tests pin it
	pipe2       func(p []int, flags int) error // syscall.Pipe2; tests make it fail
	onStall     func()                         // for tests: a client made a transfer wait with bytes in its pipe

	mu        sync.Mutex
	idle      []*pipe // the most recently used last
	transfers map[*transfer]struct{}
	open      int
	pages     int // the capacity of the open pipes, in pages
	timer     *time.Timer
	zero      chan struct{} // closed when open drops to 0
	limitN    int           // the descriptor limit last read

	// Read without mu at every turn of a transfer's loop.
	active      atomic.Int64 // transfers holding a pipe
	opened      atomic.Int64 // mirror of open
	fdFloor     atomic.Int64 // descriptors known in use at the last reading
	limit       atomic.Int64 // mirror of limitN
	resumeBelow atomic.Int64 // crowded: no pipe until the descriptors in use fall to this; 0: not crowded

	stats poolStats
}

// poolStats are counters for PipeStats.
type poolStats struct {
	splices  atomic.Int64
	spliced  atomic.Int64
	made     atomic.Int64
	closed   atomic.Int64
	resized  atomic.Int64
	smallest atomic.Int64 // the smallest capacity spliced through; 0: none yet
	largest  atomic.Int64
	noPipe   [noPipeCount]atomic.Int64
}

func newPool(b budget, idle time.Duration, fdLimit func() int) *pool {
	pl := &pool{b: b, idleTimeout: idle, fdLimit: fdLimit, pipe2: syscall.Pipe2}
	pl.limitN = fdLimit()
	pl.limit.Store(int64(pl.limitN))
	return pl
}

// pipes returns the process's pool, made at the first splice.
func pipes() *pool {
	if pl := madePool.Load(); pl != nil {
		return pl
	}
	makePool.Do(func() { madePool.Store(newPool(readBudget(), idleTimeout, descriptorLimit)) })
	return madePool.Load()
}

var (
	makePool sync.Once
	madePool atomic.Pointer[pool]
)

// share returns the most a transfer's pipe may hold now: an equal share of
// three quarters of the page budget among the transfers holding pipes (the
// other quarter takes new transfers at startWindow until the larger pipes
// shrink), a power of two pages between startWindow and maxSize.
func (pl *pool) share() int {
	if pl.b.pages == 0 {
		return pl.b.maxSize
	}
	n := max(pl.active.Load(), 1)
	s := floorPow2(int(int64(pl.b.pages)*3/4/n)) * pl.b.page
	return min(max(s, startWindow), pl.b.maxSize)
}

// short reports whether the pool's pipes hold more than half of the page
// budget: then slow clients give their pages back.
func (pl *pool) short() bool {
	if pl.b.pages == 0 {
		return false
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.pages > pl.b.pages/2
}

// crowded reports whether the descriptors in use, with extra more, pass
// half of RLIMIT_NOFILE. Then every pipe is closed (shed), those of
// transfers included, so that pipes never hold a descriptor while the table
// is more than half full: a spliced download holds four (two sockets, two
// pipe ends) where a copied one holds two, and the other half is left to
// every connection httputil.ReverseProxy could accept or dial. No pipe is
// made again until the descriptors in use are half of what they were
// without the pipes when they were shed: until the load has halved, rather
// than making and shedding pipes by turns while it stays near the half.
//
// The count in use is estimated from below by the larger of the last
// reading (the kernel hands out the lowest free descriptor, so every number
// below one it just returned is taken) and the sockets and pipes this
// package knows of: the Conns, the Sources being moved, and two descriptors
// per pipe.
func (pl *pool) crowded(extra int) bool {
	limit := pl.limit.Load()
	if limit <= 0 {
		return false
	}
	pipeFDs := 2 * pl.opened.Load()
	inUse := max(pl.fdFloor.Load(), openConns.Load()+sources.Load()+pipeFDs) + int64(extra)
	if resume := pl.resumeBelow.Load(); resume > 0 {
		if inUse > resume {
			return true
		}
		pl.resumeBelow.Store(0)
	}
	if inUse > limit/2 {
		pl.resumeBelow.Store(max((inUse-pipeFDs)/2, 1))
		return true
	}
	return false
}

// note records a reading of the descriptor table: the highest of fds, each
// the lowest free number when it was handed out, bounds the count in use.
func (pl *pool) note(fds ...int) {
	hi := -1
	for _, fd := range fds {
		hi = max(hi, fd)
	}
	if hi >= 0 {
		pl.fdFloor.Store(int64(hi) + 1)
	}
}

// get returns a pipe for a transfer, from the idle ones or new, or why
// there is none. fds are the descriptors of the transfer's two sockets (a
// reading of the table as they were made). A pipe returned counts the
// transfer in active until put.
func (pl *pool) get(fds ...int) (*pipe, NoPipe) {
	pl.note(fds...)
	pl.mu.Lock()
	if len(pl.idle) > 0 {
		p := pl.idle[len(pl.idle)-1]
		pl.idle[len(pl.idle)-1] = nil
		pl.idle = pl.idle[:len(pl.idle)-1]
		pl.active.Add(1)
		pl.mu.Unlock()
		if pl.crowded(0) {
			pl.drop(p)
			pl.shed()
			return nil, NoPipeDescriptors
		}
		return p, 0
	}
	if pl.b.pages > 0 && pl.pages+startWindow/pl.b.page > pl.b.pages {
		pl.mu.Unlock()
		return nil, NoPipeBudget
	}
	if pl.crowded(2) {
		pl.mu.Unlock()
		pl.shed()
		return nil, NoPipeDescriptors
	}
	// Reserve the pages before pipe2, so that concurrent gets stay within
	// the budget; what the kernel gave is settled below.
	reserved := startWindow / pl.b.page
	pl.pages += reserved
	pl.openLocked(1)
	pl.active.Add(1)
	if n := pl.fdLimit(); n != pl.limitN {
		pl.limitN = n
		pl.limit.Store(int64(n))
	}
	pl.mu.Unlock()

	var fds2 [2]int
	if err := pl.pipe2(fds2[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		pl.mu.Lock()
		pl.pages -= reserved
		pl.openLocked(-1)
		pl.active.Add(-1)
		pl.mu.Unlock()
		if err == syscall.EMFILE || err == syscall.ENFILE {
			pl.shed()
		}
		return nil, NoPipeFailed
	}
	pl.stats.made.Add(1)
	pl.note(fds2[1])
	p := &pipe{r: fds2[0], w: fds2[1]}
	size, errno := fcntl(p.w, fGetPipeSz, 0)
	pl.mu.Lock()
	pl.pages -= reserved
	if errno == nil {
		p.size = size
		pl.pages += size / pl.b.page
	}
	pl.mu.Unlock()
	if errno != nil || p.size < minPipe {
		// Over fs.pipe-user-pages-soft the kernel makes 2-page pipes:
		// the user's budget is spent, by this process or another.
		pl.drop(p)
		return nil, NoPipeSmall
	}
	return p, 0
}

// put gives back a transfer's pipe: kept idle for the next transfer, or
// closed when bytes are stranded in it (they belong to a body that failed,
// and must never reach another) or descriptors are short.
func (pl *pool) put(p *pipe) {
	if p.data != 0 || pl.crowded(0) {
		pl.drop(p)
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.active.Add(-1)
	p.idleSince = time.Now()
	pl.idle = append(pl.idle, p)
	if pl.timer == nil {
		pl.timer = time.AfterFunc(pl.idleTimeout, pl.expire)
	} else if len(pl.idle) == 1 {
		pl.timer.Reset(pl.idleTimeout)
	}
}

// drop closes a transfer's pipe.
func (pl *pool) drop(p *pipe) {
	pl.mu.Lock()
	pl.active.Add(-1)
	pl.closeLocked(p)
	pl.mu.Unlock()
}

// closeLocked closes p's descriptors and takes it out of the counts.
func (pl *pool) closeLocked(p *pipe) {
	syscall.Close(p.r)
	syscall.Close(p.w)
	pl.stats.closed.Add(1)
	pl.pages -= p.size / pl.b.page
	pl.openLocked(-1)
}

// openLocked adds d to the open pipes, and wakes waitClosed at zero.
func (pl *pool) openLocked(d int) {
	if pl.open == 0 && d > 0 {
		pl.zero = make(chan struct{})
	}
	pl.open += d
	pl.opened.Store(int64(pl.open))
	if pl.open == 0 && pl.zero != nil {
		close(pl.zero)
		pl.zero = nil
	}
}

// expire closes the pipes idle for idleTimeout, and sets the timer for the
// next one; with none left idle, no timer runs.
func (pl *pool) expire() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(pl.idle) && now.Sub(pl.idle[n].idleSince) >= pl.idleTimeout {
		pl.closeLocked(pl.idle[n])
		pl.idle[n] = nil
		n++
	}
	pl.idle = append(pl.idle[:0], pl.idle[n:]...)
	if len(pl.idle) > 0 {
		pl.timer.Reset(pl.idleTimeout - now.Sub(pl.idle[0].idleSince))
	}
}

// register and unregister keep the transfers holding pipes, for shed.
func (pl *pool) register(t *transfer) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.transfers == nil {
		pl.transfers = make(map[*transfer]struct{})
	}
	pl.transfers[t] = struct{}{}
}

func (pl *pool) unregister(t *transfer) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	delete(pl.transfers, t)
}

// shed closes every pipe now, idle or in use, for descriptors: a transfer
// waiting (for its upstream, or for a slow client to make room) loses its
// pipe at once, its bytes kept to be written and the rest of its body
// copied; one in a splice call loses it when the call returns. It returns
// how many pipes it closed.
func (pl *pool) shed() int {
	if pl.opened.Load() == 0 {
		return 0
	}
	pl.mu.Lock()
	n := len(pl.idle)
	for i, p := range pl.idle {
		pl.closeLocked(p)
		pl.idle[i] = nil
	}
	pl.idle = pl.idle[:0]
	ts := make([]*transfer, 0, len(pl.transfers))
	for t := range pl.transfers {
		ts = append(ts, t)
	}
	pl.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		if t.p != nil {
			t.takeAway()
			if t.p == nil {
				n++
			}
		}
		t.mu.Unlock()
	}
	return n
}

// resize asks the kernel for a pipe of size bytes (a power of two pages).
// A pipe grows only while the pool's pipes hold at most three quarters of
// the page budget, the last quarter being for new pipes (224 of 64 KiB by
// default) until the larger ones shrink to their share. It returns whether
// the kernel refused (EPERM, once the user's pipes hold
// fs.pipe-user-pages-soft: another process of the user has taken its part),
// which asking again will not change.
func (pl *pool) resize(p *pipe, size int) (refused bool) {
	if size == p.size {
		return false
	}
	grow := max(size-p.size, 0) / pl.b.page
	pl.mu.Lock()
	if grow > 0 && pl.b.pages > 0 && pl.pages+grow > pl.b.pages*3/4 {
		pl.mu.Unlock()
		return false
	}
	// Count the larger of the two sizes while the kernel decides.
	pl.pages += grow
	pl.mu.Unlock()
	got, err := fcntl(p.w, fSetPipeSz, size)
	pl.mu.Lock()
	pl.pages -= grow
	if err == nil {
		pl.pages += (got - p.size) / pl.b.page
		p.size = got
		pl.stats.resized.Add(1)
	}
	pl.mu.Unlock()
	return err != nil
}

// waitClosed waits until the pool holds no pipe, idle or in use.
func (pl *pool) waitClosed(ctx context.Context) error {
	pl.mu.Lock()
	ch := pl.zero
	pl.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (pl *pool) countSplice(p *pipe, n int64) {
	pl.stats.splices.Add(1)
	if n > 0 {
		pl.stats.spliced.Add(n)
	}
	sz := int64(p.size)
	for {
		old := pl.stats.smallest.Load()
		if (old != 0 && old <= sz) || pl.stats.smallest.CompareAndSwap(old, sz) {
			break
		}
	}
	for {
		old := pl.stats.largest.Load()
		if old >= sz || pl.stats.largest.CompareAndSwap(old, sz) {
			break
		}
	}
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// PipeStats is a snapshot of the pipe pool, for tests and measurements.
type PipeStats struct {
	Open     int                // pipes open, idle or in use
	Idle     int                // pipes kept for the next transfer
	Active   int                // transfers holding a pipe
	Bytes    int64              // the capacity of the open pipes
	Splices  int64              // splice(2) calls so far, both halves, EAGAIN included
	Spliced  int64              // bytes spliced to clients so far
	Made     int64              // pipes made so far
	Closed   int64              // pipes closed so far
	Resized  int64              // capacity changes so far
	Smallest int                // the smallest capacity a splice went through; 0: none yet
	Largest  int                // the largest
	NoPipe   [noPipeCount]int64 // copies for want of a pipe, by NoPipe
	Budget   Budget
}

// Budget is what the pool found the kernel allows.
type Budget struct {
	MaxPipe    int  // the largest pipe it asks for, bytes
	Pages      int  // the pages its pipes may hold together; 0: no limit
	PageSize   int  // bytes
	Privileged bool // CAP_SYS_RESOURCE or CAP_SYS_ADMIN: no page limit applies
	Soft, Hard int  // fs.pipe-user-pages-soft and -hard, pages
	MaxSize    int  // fs.pipe-max-size, bytes
}

// snapshot returns the pool's PipeStats.
func (pl *pool) snapshot() PipeStats {
	pl.mu.Lock()
	s := PipeStats{
		Open:  pl.open,
		Idle:  len(pl.idle),
		Bytes: int64(pl.pages) * int64(pl.b.page),
	}
	pl.mu.Unlock()
	s.Active = int(pl.active.Load())
	s.Splices = pl.stats.splices.Load()
	s.Spliced = pl.stats.spliced.Load()
	s.Made = pl.stats.made.Load()
	s.Closed = pl.stats.closed.Load()
	s.Resized = pl.stats.resized.Load()
	s.Smallest = int(pl.stats.smallest.Load())
	s.Largest = int(pl.stats.largest.Load())
	for i := range s.NoPipe {
		s.NoPipe[i] = pl.stats.noPipe[i].Load()
	}
	s.Budget = Budget{
		MaxPipe:    pl.b.maxSize,
		Pages:      pl.b.pages,
		PageSize:   pl.b.page,
		Privileged: pl.b.resource || pl.b.admin,
		Soft:       pl.b.soft,
		Hard:       pl.b.hard,
		MaxSize:    pl.b.sysMax,
	}
	return s
}

// Pipes returns a snapshot of the process's pipe pool (see PipeStats).
func Pipes() PipeStats { return pipes().snapshot() }

// WaitPipesClosed waits until the process's pool holds no pipe, in use or
// idle, or ctx ends: after a burst, the idle timeout closes them all.
func WaitPipesClosed(ctx context.Context) error { return pipes().waitClosed(ctx) }

// ReleasePipes closes every pipe now, the idle ones and those of transfers
// (which go on by copying), and returns how many it closed: for a caller
// refused a descriptor (EMFILE) that the pool may be holding.
func ReleasePipes() int {
	if pl := madePool.Load(); pl != nil {
		return pl.shed()
	}
	return 0
}
