// Package benchproc holds what the benchmark commands under tools/cmd
// (bench, proxybench, rangebench, smallfiles and tlsbench) share: starting
// and finding server processes, reading their CPU time from /proc, pinning
// processes to CPUs, writing nginx configurations, test files (and checking
// a download of one) and certificates, and the statistics and machine line
// of their reports.
//
// The parts that read /proc or set CPU affinity build on Linux only, as the
// commands do.
package benchproc
