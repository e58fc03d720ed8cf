package copyreasons

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/testutil"
)

// TestCopyReasonsUnderStrace runs each case's server in a child process
// under strace and checks that the bytes sendfile(2) returned add up to the
// fastpath.response.sendfile.size the child logged: nothing where the
// child's log names a reason, all but 512 bytes where it names none.
func TestCopyReasonsUnderStrace(t *testing.T) {
	if err := strace.Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("strace cannot run though CI is set (.ci/install-tools installs it): %v", err)
		}
		t.Skip("skipping: ", err)
	}
	dir := t.TempDir()
	content := writeFiles(t, dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startChild(t, tc.name, dir)
			body := get(t, tc, c.url, content)
			rec, sum := c.stop(t)

			_, sendfile := loggedSizes(t, rec)
			// A refused call (EINVAL from a pipe) sends nothing and
			// adds nothing.
			if saw := sum["sendfile"]; saw.Sum != sendfile {
				t.Errorf("logged sendfile size %d; strace saw sendfile(2) return %d bytes in %d calls (%d refused)",
					sendfile, saw.Sum, saw.Count, saw.Errors)
			}
			if want := tc.wantSendfile(len(body)); sendfile != want {
				t.Errorf("logged sendfile size %d, want %d", sendfile, want)
			}
			// The claim strace checks is the child's own.
			checkReason(t, "child's log record", tc, func(key string) (string, bool) {
				v, ok := rec[key]
				s, _ := v.(string)
				return s, ok
			})
		})
	}
}

// childEnv carries a childConfig, as JSON, to the test binary run again as a
// child, which then serves a case instead of running the tests.
const childEnv = "FASTPATH_COPYREASONS_CHILD"

// childConfig is what a child serves, and where it logs.
type childConfig struct {
	Case string // the name of the case whose server it runs
	Dir  string // the files of writeFiles
	Log  string // the file its JSON log records go to
}

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(runChild(raw))
	}
	os.Exit(m.Run())
}

// runChild serves the case raw names until its standard input closes,
// printing the server's URL on standard output first, and returns the exit
// status.
func runChild(raw string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fail(err)
	}
	var tc *copyCase
	for i := range cases {
		if cases[i].name == cfg.Case {
			tc = &cases[i]
		}
	}
	if tc == nil {
		return fail(fmt.Errorf("no case %q", cfg.Case))
	}
	logs, err := os.Create(cfg.Log)
	if err != nil {
		return fail(err)
	}
	defer logs.Close()
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	// The same SDK providers as in process, so the child runs the same
	// code; what they record is not read.
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())

	srv, _ := start(*tc, newApp(root, logs, tp, mp))
	fmt.Printf("URL %s\n", srv.URL)
	io.Copy(io.Discard, os.Stdin)
	srv.Close() // waits for the request's handler, and so for its log record
	return 0
}

// child is a case's server running under strace.
type child struct {
	proc   *testutil.Child
	stderr *testutil.LockedBuffer
	url    string
	trace  string
	log    string
}

// startChild runs the test binary as the server of the case named name
// over dir, under strace -f -e trace=sendfile.
func startChild(t *testing.T, name, dir string) *child {
	t.Helper()
	tmp := t.TempDir()
	c := &child{trace: filepath.Join(tmp, "strace.out"), log: filepath.Join(tmp, "requests.log"), stderr: &testutil.LockedBuffer{}}
	raw, err := json.Marshal(childConfig{Case: name, Dir: dir, Log: c.log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	cmd := strace.Command(ctx, c.trace, []string{"sendfile"}, os.Args[0], "-test.run=^$")
	// Under -race, the race runtime sleeps a second before a process
	// exits, unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw), "GORACE="+gorace)
	cmd.Stderr = c.stderr
	var line string
	c.proc, line = testutil.StartChild(t, cmd)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "URL ")
	if !ok {
		t.Fatalf("child said %q, want its URL\n%s", line, c.stderr)
	}
	c.url = url
	return c
}

// stop shuts the child down and returns its one log record and what strace
// saw.
func (c *child) stop(t *testing.T) (map[string]any, strace.Summary) {
	t.Helper()
	if err := c.proc.Stop(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr)
	}
	sum, err := strace.ParseFile(c.trace)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := os.ReadFile(c.log)
	if err != nil {
		t.Fatal(err)
	}
	return oneRecord(t, string(logs)), sum
}
