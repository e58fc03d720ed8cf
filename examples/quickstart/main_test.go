package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// readmeProgram returns the Go program in the README's "Use it" section: the
// first ```go block between its heading and the next.
func readmeProgram(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Use it\n")
	if !ok {
		t.Fatal(`README.md has no "## Use it" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, code, ok := strings.Cut(section, "\n```go\n")
	if !ok {
		t.Fatal(`README.md's "Use it" section has no go code block`)
	}
	code, _, ok = strings.Cut(code, "\n```\n")
	if !ok {
		t.Fatal(`README.md's "Use it" code block does not end`)
	}
	return code + "\n"
}

// TestREADME checks that the README's "Use it" program is this one, byte
// for byte, so that what TestQuickstart proves holds of what users copy.
func TestREADME(t *testing.T) {
	got := readmeProgram(t)
	want, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("README.md's \"Use it\" program differs from examples/quickstart/main.go at line %d:\nREADME:  %q\nmain.go: %q\n(edit main.go, then copy it into the README)", i+1, g, w)
		}
	}
}

// quickstart is the program running as a user runs it.
type quickstart struct {
	cmd   *exec.Cmd
	lines chan map[string]any // its JSON log lines, in order
}

// build builds the program.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// start runs the program on root, with no OTEL_* variable set: nothing
// leaves the process.
func start(t *testing.T, bin, root string) *quickstart {
	t.Helper()
	q := &quickstart{cmd: exec.Command(bin, "-addr", "127.0.0.1:0", "-root", root), lines: make(chan map[string]any, 16)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			q.cmd.Env = append(q.cmd.Env, kv)
		}
	}
	var stderr testutil.LockedBuffer
	q.cmd.Stderr = &stderr
	stdout, err := q.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		q.cmd.Process.Kill()
		<-done
		q.cmd.Wait()
		if t.Failed() {
			t.Logf("the program's stderr:\n%s", stderr.String())
		}
	})
	go func() {
		defer close(done)
		defer close(q.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"not JSON": sc.Text()}
			}
			q.lines <- m
		}
	}()
	return q
}

// next reads the program's log lines until one has msg, and returns it.
func (q *quickstart) next(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(2 * time.Minute) // only keeps a broken program from hanging the test
	for {
		select {
		case m, ok := <-q.lines:
			if !ok {
				t.Fatalf("the program exited before logging %q", msg)
			}
			if _, bad := m["not JSON"]; bad {
				t.Fatalf("a log line is not JSON: %q", m["not JSON"])
			}
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q log line after two minutes", msg)
		}
	}
}

// TestQuickstart builds and runs the program as the README says, downloads
// a file through it, and finds what the README promises: a JSON log line
// with the body size, the sendfile bytes and a trace id; the request's
// http_server_request_duration_seconds series on /metrics; and, scraped as
// OpenMetrics, exemplars that carry the log line's trace id.
func TestQuickstart(t *testing.T) {
	root := t.TempDir()
	const size = 64 << 10
	data := testutil.WriteRandomFile(t, root, "go.sum", size)
	q := start(t, build(t), root)
	base, ok := strings.CutSuffix(q.next(t, "serving")["url"].(string), "/files/")
	if !ok {
		t.Fatal("the serving line has no /files/ URL")
	}

	// One connection: net/http serves its requests one after the other, so
	// the scrapes come after the download's handler has recorded it.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	get := func(path, accept string) []byte {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", accept)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		return body
	}

	if got := get("/files/go.sum", "*/*"); !bytes.Equal(got, data) {
		t.Fatalf("the download is %d bytes, not the file's %d", len(got), size)
	}
	rec := q.next(t, "http request")
	traceID, _ := rec["trace_id"].(string)
	spanID, _ := rec["span_id"].(string)
	if rec["url.path"] != "/files/go.sum" || rec["http.response.body.size"] != float64(size) ||
		rec["fastpath.response.sendfile.size"] != float64(size-512) ||
		!regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(traceID) || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(spanID) {
		t.Fatalf("log line %v: want /files/go.sum, body %d, sendfile %d, and trace and span ids", rec, size, size-512)
	}

	text := get("/metrics", "text/plain")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	var count uint64
	for _, m := range families["http_server_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "http_route" && l.GetValue() == "/files/*" {
				count += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if count != 1 {
		t.Errorf("http_server_request_duration_seconds{http_route=\"/files/*\"} counts %d requests, want the download", count)
	}

	open := get("/metrics", "application/openmetrics-text; version=1.0.0")
	// An exemplar's labels come in either order.
	ids := []string{`trace_id="` + traceID + `"`, `span_id="` + spanID + `"`}
	for _, metric := range []string{"http_server_request_duration_seconds_bucket", "http_server_response_body_size_bytes_bucket", "fastpath_server_response_sendfile_size_bytes_bucket"} {
		found := false
		for _, line := range strings.Split(string(open), "\n") {
			sample, ex, ok := strings.Cut(line, " # {")
			if ok && strings.HasPrefix(sample, metric+"{") && strings.Contains(sample, `http_route="/files/*"`) {
				labels, _, _ := strings.Cut(ex, "}")
				found = found || labels == ids[0]+","+ids[1] || labels == ids[1]+","+ids[0]
			}
		}
		if !found {
			t.Errorf("no %s{http_route=\"/files/*\"} exemplar with %s and %s in the OpenMetrics scrape:\n%s", metric, ids[0], ids[1], open)
		}
	}
}

// TestQuickstartHelp checks that -h prints the flags and exits 0.
func TestQuickstartHelp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, build(t), "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-addr string") || !strings.Contains(string(out), "-root string") {
		t.Errorf("-h: %v, output:\n%s\nwant exit status 0 and the flags", err, out)
	}
}
