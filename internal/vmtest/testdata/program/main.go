// Command program is what TestProgram runs in the guest: it prints its
// arguments, whether it knows it is in the guest, the content of a file,
// the first line a dynamically linked host program prints, and where a
// busybox command is found on the PATH, then exits with the status -exit
// names.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func main() {
	file := flag.String("file", "", "a file to print")
	run := flag.String("run", "", "a program to run with --version")
	exit := flag.Int("exit", 0, "the exit status")
	flag.Parse()
	fmt.Printf("args: %s\n", strings.Join(flag.Args(), " "))
	fmt.Printf("guest: %s\n", os.Getenv("FASTPATH_VMTEST_GUEST"))
	b, err := os.ReadFile(*file)
	fmt.Printf("file: %q %v\n", b, err)
	out, err := exec.Command(*run, "--version").Output()
	line, _, _ := bufio.NewReader(bytes.NewReader(out)).ReadLine()
	fmt.Printf("run: %s %v\n", line, err)
	taskset, err := exec.LookPath("taskset")
	fmt.Printf("taskset: %s %v\n", taskset, err)
	os.Exit(*exit)
}
