// Package modcheck proves that adding fastpath to a module never moves the
// versions the module already chose for anything fastpath's library code
// does not itself need.
package modcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// userRequires are what a typical service already requires, at versions
// older than fastpath's tools and examples use: if the library module listed
// those (as it once did), adding fastpath would upgrade them.
var userRequires = map[string]string{
	"google.golang.org/grpc":              "v1.60.0",
	"github.com/gorilla/handlers":         "v1.5.1",
	"github.com/prometheus/client_golang": "v1.19.0",
}

// userMainBefore is the service before it adds fastpath.
const userMainBefore = `package main

import (
	"net/http"
	"os"

	"github.com/gorilla/handlers"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
)

func main() {
	_ = grpc.NewServer()
	http.Handle("/metrics", promhttp.Handler())
	http.Handle("/", handlers.CombinedLoggingHandler(os.Stderr, http.FileServer(http.Dir("."))))
}
`

// userMain is the service once it uses fastpath.
const userMain = `package main

import (
	"net/http"
	"os"

	"github.com/gorilla/handlers"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	fphandlers "github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
)

func main() {
	_ = grpc.NewServer()
	root, _ := os.OpenRoot(".")
	h := handlers.CombinedLoggingHandler(os.Stderr, fphandlers.FileServer(root))
	http.Handle("/metrics", promhttp.Handler())
	http.Handle("/", middleware.Logger(nil)(h))
}
`

// userTest imports the test kit, as a user's tests would.
const userTest = `package main

import (
	"testing"

	"github.com/fastpath-go/fastpath/integration"
)

func TestKit(t *testing.T) { _ = integration.CheckZeroCopy }
`

// TestAddingFastpathKeepsUserVersions builds a throwaway module that
// requires grpc, gorilla/handlers and client_golang at old versions, adds
// this checkout of fastpath to it (a replace directive stands in for the
// module proxy; module graph pruning treats both alike), runs go mod tidy,
// and checks that those versions did not move. It needs the Go module proxy.
func TestAddingFastpathKeepsUserVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: downloads modules from the Go module proxy")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "middleware")); err != nil {
		t.Fatalf("the repository root is not at %s: %v", repo, err)
	}
	dir := t.TempDir()
	var mod strings.Builder
	mod.WriteString("module example.com/user\n\ngo 1.26.0\n\nrequire (\n")
	for path, v := range userRequires {
		mod.WriteString("\t" + path + " " + v + "\n")
	}
	mod.WriteString(")\n")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", mod.String())
	write("main.go", userMainBefore)
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = dir
		// The user's module is on its own: no workspace, no flags of ours.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	check := func(when string) {
		t.Helper()
		for path, want := range userRequires {
			got := strings.TrimSpace(run("list", "-m", "-f", "{{.Version}}", path))
			if got != want {
				t.Errorf("%s: %s is at %s, want %s", when, path, got, want)
			}
		}
	}
	run("mod", "tidy")
	check("before adding fastpath")

	write("main.go", userMain)
	write("main_test.go", userTest)
	run("mod", "edit",
		"-require=github.com/fastpath-go/fastpath@v0.0.0-00010101000000-000000000000",
		"-replace=github.com/fastpath-go/fastpath="+repo)
	run("mod", "tidy")
	check("after adding fastpath and go mod tidy")
	if t.Failed() {
		t.Logf("go.mod after adding fastpath:\n%s", run("mod", "edit", "-print"))
	}
}
