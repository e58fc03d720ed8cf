package zerocopy

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestBudgetDerive(t *testing.T) {
	const page = 4096
	tests := []struct {
		name        string
		b           budget
		wantMax     int
		wantPages   int
		wantLimited bool
	}{
		{name: "plain user, kernel defaults", b: budget{soft: 16384, sysMax: 1 << 20},
			wantMax: 1 << 20, wantPages: 14336},
		{name: "CAP_SYS_ADMIN: no page limit", b: budget{soft: 16384, sysMax: 1 << 20, admin: true},
			wantMax: 1 << 20, wantPages: 0},
		{name: "CAP_SYS_RESOURCE: past pipe-max-size", b: budget{soft: 16384, sysMax: 64 << 10, resource: true},
			wantMax: 1 << 20, wantPages: 0},
		{name: "small pipe-max-size", b: budget{soft: 16384, sysMax: 256 << 10},
			wantMax: 256 << 10, wantPages: 14336},
		{name: "pipe-max-size not a power of two pages", b: budget{soft: 16384, sysMax: 300000},
			wantMax: 256 << 10, wantPages: 14336},
		{name: "hard limit below soft", b: budget{soft: 16384, hard: 8192, sysMax: 1 << 20},
			wantMax: 1 << 20, wantPages: 7168},
		{name: "hard limit alone", b: budget{soft: 0, hard: 8192, sysMax: 1 << 20},
			wantMax: 1 << 20, wantPages: 7168},
		{name: "no limits", b: budget{sysMax: 1 << 20},
			wantMax: 1 << 20, wantPages: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.b.page = page
			got := tt.b.derive()
			if got.maxSize != tt.wantMax || got.pages != tt.wantPages {
				t.Errorf("maxSize %d, pages %d; want %d, %d", got.maxSize, got.pages, tt.wantMax, tt.wantPages)
			}
		})
	}
}

func TestEffectiveCaps(t *testing.T) {
	tests := []struct {
		name                    string
		status                  string
		wantResource, wantAdmin bool
	}{
		{name: "root", status: "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n", wantResource: true, wantAdmin: true},
		{name: "root without CAP_SYS_RESOURCE", status: "CapEff:\t000001fffeffffff\n", wantResource: false, wantAdmin: true},
		{name: "CAP_SYS_RESOURCE alone", status: "CapEff:\t0000000001000000\n", wantResource: true},
		{name: "plain user", status: "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"},
		{name: "no CapEff line", status: "Name:\tx\n"},
		{name: "garbled", status: "CapEff:\tzz\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, a := effectiveCaps([]byte(tt.status))
			if r != tt.wantResource || a != tt.wantAdmin {
				t.Errorf("CAP_SYS_RESOURCE %v, CAP_SYS_ADMIN %v; want %v, %v", r, a, tt.wantResource, tt.wantAdmin)
			}
		})
	}
}

// testBudget is a plain user's budget with the kernel's defaults and pages
// pages for the pool.
func testBudget(pages int) budget {
	b := budget{page: 4096, soft: 16384, sysMax: 1 << 20}.derive()
	b.pages = pages
	return b
}

// closed reports whether fd is closed.
func closed(fd int) bool {
	_, err := fcntl(fd, syscall.F_GETFD, 0)
	return err == syscall.EBADF
}

// TestPoolRefuses checks each reason the pool has no pipe for a transfer,
// and that a refusal leaves nothing open or counted.
func TestPoolRefuses(t *testing.T) {
	var made [2]int
	tests := []struct {
		name  string
		pages int // the pool's page budget
		limit int // RLIMIT_NOFILE
		fds   []int
		pipe2 func(p []int, flags int) error
		taken int // pipes taken before the one refused
		want  NoPipe
	}{
		{name: "pages spent", pages: 16, limit: 1 << 20, taken: 1, want: NoPipeBudget},
		{name: "descriptors past half the limit", pages: 0, limit: 200, fds: []int{150}, want: NoPipeDescriptors},
		{name: "pipe2 fails", pages: 0, limit: 1 << 20,
			pipe2: func([]int, int) error { return syscall.EMFILE }, want: NoPipeFailed},
		{name: "the kernel makes a small pipe", pages: 0, limit: 1 << 20,
			pipe2: func(p []int, flags int) error {
				// What a user over fs.pipe-user-pages-soft gets: 2 pages.
				if err := syscall.Pipe2(p, flags); err != nil {
					return err
				}
				if _, err := fcntl(p[1], fSetPipeSz, 8192); err != nil {
					return err
				}
				made = [2]int{p[0], p[1]}
				return nil
			}, want: NoPipeSmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := newPool(testBudget(tt.pages), time.Hour, func() int { return tt.limit })
			if tt.pipe2 != nil {
				pl.pipe2 = tt.pipe2
			}
			var held []*pipe
			for range tt.taken {
				p, why := pl.get()
				if p == nil {
					t.Fatalf("no pipe: %d", why)
				}
				held = append(held, p)
			}
			p, why := pl.get(tt.fds...)
			if p != nil || why != tt.want {
				t.Fatalf("get = %v, %d; want none, %d", p, why, tt.want)
			}
			if got := pl.snapshot(); got.Open != tt.taken || got.Active != tt.taken {
				t.Errorf("%d pipes open, %d active; want %d", got.Open, got.Active, tt.taken)
			}
			if tt.want == NoPipeSmall && (!closed(made[0]) || !closed(made[1])) {
				t.Errorf("the small pipe's descriptors are open: a small pipe is never kept")
			}
			for _, p := range held {
				pl.drop(p)
			}
			if got := pl.snapshot(); got.Open != 0 || got.Bytes != 0 {
				t.Errorf("after: %d open, %d bytes counted; want none", got.Open, got.Bytes)
			}
		})
	}
}

// TestPoolIdleClose checks that pipes given back are kept for the next
// transfer, the most recently used first, and closed once idle for the
// timeout by a timer alone: no goroutine runs for an idle pool, none once
// it is empty, and no garbage collection is needed.
func TestPoolIdleClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Second
		pl := newPool(testBudget(0), idle, func() int { return 1 << 20 })
		var ps []*pipe
		for range 3 {
			p, why := pl.get()
			if p == nil {
				t.Fatalf("no pipe: %d", why)
			}
			ps = append(ps, p)
		}
		pl.put(ps[0])
		time.Sleep(idle / 2)
		pl.put(ps[1])
		pl.put(ps[2])
		again, _ := pl.get()
		if again != ps[2] {
			t.Errorf("get took another pipe than the one given back last")
		}
		pl.put(again)
		synctest.Wait()
		if got := pl.snapshot(); got.Open != 3 || got.Idle != 3 {
			t.Fatalf("%d open, %d idle; want 3 kept", got.Open, got.Idle)
		}
		time.Sleep(idle / 2) // ps[0] has been idle for the timeout
		synctest.Wait()
		if !closed(ps[0].r) || !closed(ps[0].w) || closed(ps[1].r) || closed(ps[2].r) {
			t.Errorf("after %v: the first pipe closed %v, the others %v %v; want only the first", idle, closed(ps[0].r), closed(ps[1].r), closed(ps[2].r))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := pl.waitClosed(ctx); err != nil {
			t.Fatal(err)
		}
		if got := pl.snapshot(); got.Open != 0 || got.Idle != 0 || got.Bytes != 0 || got.Closed != 3 {
			t.Errorf("%+v; want every pipe closed", got)
		}
		for _, p := range ps {
			if !closed(p.r) || !closed(p.w) {
				t.Errorf("pipe %d/%d left open", p.r, p.w)
			}
		}
	})
}

// TestSpliceGivesUpPipeWhenCrowded checks that a transfer whose pipe is
// wanted for descriptors mid-body gives it up at its next turn and copies
// the rest, every byte arriving, and says why.
func TestSpliceGivesUpPipeWhenCrowded(t *testing.T) {
	server, client := pair(t)
	src, up := tcpPair(t)
	pl := newPool(testBudget(0), time.Hour, func() int { return 1 << 20 })
	parts := [][]byte{pattern(100 << 10), pattern(1000), pattern(300 << 10)}
	want := bytes.Join(parts, nil)
	got := make(chan []byte, 1)
	has := make(chan int, 64)
	go func() {
		var buf bytes.Buffer
		p := make([]byte, 64<<10)
		for {
			n, err := client.Read(p)
			buf.Write(p[:n])
			if n > 0 {
				has <- buf.Len()
			}
			if err != nil || buf.Len() == len(want) {
				got <- buf.Bytes()
				return
			}
		}
	}()
	clientHas := func(n int) {
		for m := range has {
			if m >= n {
				return
			}
		}
	}
	go func() {
		up.Write(parts[0])
		clientHas(len(parts[0]))
		pl.limit.Store(2) // the table is now past half of the limit
		up.Write(parts[1])
		clientHas(len(parts[0]) + len(parts[1]))
		up.Write(parts[2])
	}()
	s := &Source{Conn: src, N: int64(len(want))}
	n, err, handled := server.spliceFrom(pl, s)
	if handled || err != nil {
		t.Fatalf("spliceFrom = %d, %v, handled %v; want it to hand the rest over", n, err, handled)
	}
	m, err := io.Copy(writerOnly{server.Conn}, s)
	if err != nil || n+m != int64(len(want)) {
		t.Fatalf("%d spliced and %d copied, %v; want %d in all", n, m, err, len(want))
	}
	if body := <-got; !bytes.Equal(body, want) {
		t.Errorf("the client got %d bytes that differ", len(body))
	}
	// The limit fell once the first part was out: the loop gave the pipe
	// up at its next turn, which came before the second part or (when
	// the loop was waiting for it already) right after it.
	if (n != int64(len(parts[0])) && n != int64(len(parts[0])+len(parts[1]))) || s.NoPipe != NoPipeDescriptors {
		t.Errorf("spliced %d, NoPipe %d; want %d or %d, %d", n, s.NoPipe, len(parts[0]), len(parts[0])+len(parts[1]), NoPipeDescriptors)
	}
	if st := pl.snapshot(); st.Open != 0 || st.Active != 0 {
		t.Errorf("%d pipes open, %d active after; want the pipe closed", st.Open, st.Active)
	}
}

// TestSpliceReadsBackThePipeSize checks that the size spliced through is
// the one the kernel reports, not the one asked for, and never below
// minPipe.
func TestSpliceReadsBackThePipeSize(t *testing.T) {
	const size = 8 << 20
	server, client := pair(t)
	src, up := tcpPair(t)
	pl := newPool(testBudget(0), time.Hour, func() int { return 1 << 20 })
	go func() { up.Write(pattern(size)) }()
	done := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, client); done <- n }()
	s := &Source{Conn: src, N: size}
	n, err, handled := server.spliceFrom(pl, s)
	server.Close()
	if !handled || err != nil || n != size || <-done != size {
		t.Fatalf("spliceFrom = %d, %v, %v; want %d spliced", n, err, handled, size)
	}
	st := pl.snapshot()
	p, _ := pl.get()
	defer pl.drop(p)
	kernel, err := fcntl(p.w, fGetPipeSz, 0)
	if err != nil || kernel != p.size {
		t.Errorf("the pool says %d bytes, the kernel %d (%v)", p.size, kernel, err)
	}
	if st.Smallest < minPipe || st.Largest < st.Smallest || st.Largest > pl.b.maxSize {
		t.Errorf("spliced through pipes of %d to %d bytes; want between %d and %d", st.Smallest, st.Largest, minPipe, pl.b.maxSize)
	}
}

// TestShedTakesAStalledPipe checks that the pool takes the pipe of a
// transfer waiting for a client that does not read, at once, and that the
// transfer then writes the bytes that were in it and copies the rest, every
// byte arriving in order.
func TestShedTakesAStalledPipe(t *testing.T) {
	const size = 32 << 20 // far more than the sockets hold
	server, client := pair(t)
	src, up := tcpPair(t)
	pl := newPool(testBudget(0), time.Hour, func() int { return 1 << 20 })
	stalls := make(chan struct{}, 1)
	pl.onStall = func() {
		select {
		case stalls <- struct{}{}:
		default:
		}
	}
	want := pattern(size)
	go up.Write(want)
	type result struct {
		n       int64
		err     error
		handled bool
	}
	done := make(chan result, 1)
	s := &Source{Conn: src, N: size}
	go func() {
		n, err, handled := server.spliceFrom(pl, s)
		if !handled && err == nil {
			var m int64
			m, err = io.Copy(writerOnly{server.Conn}, s)
			n += m
		}
		done <- result{n, err, handled}
	}()
	// The client reads a little, so the transfer is under way, and stops:
	// the pump fills the sockets and waits with bytes in the pipe (it may
	// have waited before, and moved on, while the client read).
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(client, head); err != nil {
		t.Fatal(err)
	}
	<-stalls
	var fds [2]int
	pl.mu.Lock()
	for tr := range pl.transfers {
		tr.mu.Lock()
		fds = [2]int{tr.p.r, tr.p.w}
		tr.mu.Unlock()
	}
	pl.mu.Unlock()
	if n := pl.shed(); n != 1 {
		t.Fatalf("shed closed %d pipes, want 1", n)
	}
	if !closed(fds[0]) || !closed(fds[1]) || pl.snapshot().Open != 0 {
		t.Errorf("the pipe is open after shed: %+v", pl.snapshot())
	}
	rest, err := io.ReadAll(io.LimitReader(client, size-int64(len(head))))
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.handled || r.n != size || s.NoPipe != NoPipeDescriptors {
		t.Fatalf("ReadFrom moved %d, %v, handled %v, NoPipe %d; want %d copied after the pipe was taken", r.n, r.err, r.handled, s.NoPipe, size)
	}
	if !bytes.Equal(append(head, rest...), want) {
		t.Errorf("the client got bytes that differ")
	}
	if got := server.Splice(); got <= 0 || got >= size {
		t.Errorf("Splice() = %d, want some but not all of %d", got, size)
	}
}
