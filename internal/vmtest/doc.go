// Package vmtest runs a package's tests inside a QEMU guest that boots a
// Debian kernel package, for tests that need a kernel feature the machine
// running them lacks (kernel TLS, for one: most CI kernels have no tls ULP).
//
// # How a run goes
//
// Run (or RunTest, its testing.TB form) builds the package's test binary
// with go test -c and CGO_ENABLED=0, so it is static; packs an initramfs
// (a newc cpio the package writes itself) with it, busybox from Debian's
// busybox-static for the shell, insmod and ip, and the kernel modules the
// Config names, each after the modules its .modinfo says it depends on;
// and boots
//
//	qemu-system-x86_64 -machine q35 -cpu max -m 1024 -smp 2 -nographic \
//		-no-reboot -nic none -kernel vmlinux -initrd initrd.cpio \
//		-append 'console=ttyS0 quiet panic=-1'
//
// The guest's /init mounts /proc, /sys, /dev and a tmpfs /tmp, links
// busybox's commands into /bin and puts /usr/bin, /usr/sbin, /bin and /sbin
// on the PATH, brings up lo, loads the modules, runs the test binary with
// -test.v, the Config's -test.run pattern and EnvGuest=1, prints a marker
// line with its exit status, and powers off. The host reads the output between the markers from
// the console, and RunTest fails the calling test with that output when the
// guest's tests failed. A timeout (5 minutes unless set) bounds everything;
// QEMU is killed when it passes. -cpu max gives the emulated CPU AES-NI and
// the rest of what the kernel's fast crypto modules want.
//
// # Running a program and other files
//
// Config.Program runs a main package instead of a test binary: built with
// go build and CGO_ENABLED=0, started in /tmp with Config.Args, its output
// and exit status returned in the Result (a benchmark in the guest,
// tools/cmd/tlsbench, runs this way); Config.Output receives the output as it
// comes, for a long run's progress. Config.Files adds files to the
// initramfs, from host files or data; Executable lists a dynamically
// linked host program with its ELF interpreter and shared libraries, at
// the paths the guest's loader looks in, so strace(1) or nginx run in the
// guest as Debian packaged them. The guest has no /etc but what Files put
// there. The initramfs is unpacked into the guest's memory, so a large
// input is better made in the guest, under /tmp, than carried in.
//
// # The kernel
//
// The kernel is a Debian image package, linux-image-6.1.0-57-amd64 say: by
// default the one linux-image-amd64 depends on (apt-cache depends), or
// Config.Kernel, or the EnvKernel environment variable, so another kernel
// version is one package name away. It is fetched with apt-get download
// (which works without root once apt's lists exist) into CacheDir (EnvCache,
// or fastpath-vmtest under os.UserCacheDir), unpacked there with dpkg-deb
// -x, never installed. The uncompressed vmlinux is taken out of the
// package's vmlinuz (an xz stream after the setup code) and booted directly
// through its PVH entry, which under TCG emulation saves the seconds the
// in-guest decompression costs; when that fails, vmlinuz boots instead.
// .ci/install-tools installs qemu-system-x86, busybox-static and xz-utils
// and fetches the default kernel with cmd/vmtest-fetch.
//
// Measured on a 2-core machine without KVM (TestBoot): the boot to the
// test binary's start takes 3-4 s, a whole run of a small test binary
// 11-18 s, most of it the test binary starting under emulation and the
// guest powering off.
//
// # Adding a kernel-dependent test
//
// Boot once per package: a boot costs seconds, so one host test runs every
// guest test of the package in a single boot.
//
// First, write the tests as ordinary tests that skip when the running
// kernel lacks the feature (probe it rather than look at InGuest, so they
// also run natively on a kernel that has it). Then add one host test that
// boots the guest, and skips itself in the guest or where the feature is
// native:
//
//	func TestGuest(t *testing.T) {
//		if vmtest.InGuest() || nativeSupport() {
//			t.Skip("the tests run natively here")
//		}
//		vmtest.RunTest(t, vmtest.Config{
//			Modules: []string{"tls", "gcm", "aesni-intel"},
//			Run:     "^TestKernel",
//		})
//	}
//
// If the tests need a Debian package besides the kernel, add it to
// .ci/install-tools; if they need another kernel, set Config.Kernel.
//
// The guest binary is built without -race (the race detector needs cgo) and
// runs as root in a bare initramfs: no network but lo, no modprobe, no
// /etc. Outside CI a missing qemu-system-x86_64, busybox-static or kernel
// package skips the host test with the exact reason; with CI set it fails.
package vmtest
