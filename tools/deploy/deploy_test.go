package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// promtool returns the path of promtool. Without it the test skips, saying
// why, unless CI is set: .ci/install-tools installs it there, so its absence
// is a failure.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("promtool not found; install Debian's prometheus package (.ci/install-tools does) to check the rules and the dashboard")
		}
		t.Fatalf("promtool not found though CI is set (.ci/install-tools installs it): %v", err)
	}
	return p
}

// runPromtool runs promtool with args in dir and fails the test with its
// output when it does not succeed.
func runPromtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRules checks the shipped rules and runs their unit tests: the
// fast-path-lost alert fires for the routes whose large responses lost
// zero-copy and for no healthy, small-body or never-zero-copy route.
func TestRules(t *testing.T) {
	dir := deployDir(t)
	src, err := os.ReadFile(filepath.Join(dir, RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	// Every rule in the file starts with a "record:" or "alert:" key;
	// promtool must have loaded each of them.
	want := 0
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "- ")
		if strings.HasPrefix(line, "record:") || strings.HasPrefix(line, "alert:") {
			want++
		}
	}
	out := runPromtool(t, dir, "check", "rules", RulesFile)
	if w := fmt.Sprintf("SUCCESS: %d rules found", want); want == 0 || !strings.Contains(out, w) {
		t.Errorf("promtool check rules: want %q:\n%s", w, out)
	}
	out = runPromtool(t, filepath.Join(dir, "prometheus"), "test", "rules", filepath.Base(RulesTestFile))
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// abortSelector is the matcher that defines an aborted response: an
// error.type that is neither a 5xx status code nor "panic".
const abortSelector = `error_type!~"5..|panic|"`

// TestAbortSelectorShared keeps the rules and the dashboard on one
// definition of an aborted response.
func TestAbortSelectorShared(t *testing.T) {
	dir := deployDir(t)
	rules, err := os.ReadFile(filepath.Join(dir, RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDashboard(filepath.Join(dir, DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := d.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(rules), "error_type"); n != strings.Count(string(rules), abortSelector) || n != 1 {
		t.Errorf("the rules match error_type %d times, want once, as %s", n, abortSelector)
	}
	var inDashboard int
	for _, q := range qs {
		if strings.Contains(q.Expr, "error_type") {
			inDashboard++
			if !strings.Contains(q.Expr, abortSelector) {
				t.Errorf("%s matches error_type otherwise than %s: %s", q.Name(), abortSelector, q.Expr)
			}
		}
	}
	if inDashboard != 1 {
		t.Errorf("%d dashboard queries match error_type, want 1", inDashboard)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"job": "files", "__rate_interval": "5m"}
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "plain", in: `rate(x{job=~"$job"}[$__rate_interval])`, want: `rate(x{job=~"files"}[5m])`},
		{name: "braces", in: `x{job=~"${job}"}`, want: `x{job=~"files"}`},
		{name: "legend braces untouched", in: `sum by (http_route) (x)`, want: `sum by (http_route) (x)`},
		{name: "unknown", in: `x{instance="$instance"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.in, vars)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Expand(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// promtool's unit test file, written as JSON (which YAML reads).
type testFile struct {
	RuleFiles          []string   `json:"rule_files"`
	EvaluationInterval string     `json:"evaluation_interval"`
	Tests              []testCase `json:"tests"`
}

type testCase struct {
	Name     string     `json:"name"`
	Interval string     `json:"interval"`
	Input    []series   `json:"input_series"`
	Exprs    []exprTest `json:"promql_expr_test"`
}

type series struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type exprTest struct {
	Expr     string   `json:"expr"`
	EvalTime string   `json:"eval_time"`
	Samples  []sample `json:"exp_samples"`
}

type sample struct {
	Labels string  `json:"labels"`
	Value  float64 `json:"value"`
}

// dashboardVars are the values the dashboard's variables take in the test:
// one job selected, Grafana's rate interval at five minutes.
var dashboardVars = map[string]string{"job": "files", "__rate_interval": "5m", "__interval": "1m"}

// dashboardInput is a service over 20 minutes, one request a second per
// route and 1 MiB bodies unless said otherwise:
//
//	/files/*      sendfile, healthy; 30 requests a minute under 0.1 s, 54
//	              under 0.5 s, all under 1 s; 6 aborted a minute besides
//	/downloads/*  fast path lost (sendfile 0), the copies by reason; 3
//	              answers of 500 a minute
//	/proxy/*      splice, no sendfile series
//
// and a second job whose traffic the job variable must leave out.
func dashboardInput() []series {
	files := func(route string, extra string) string {
		return `{job="files",instance="a:8080",http_request_method="GET",http_response_status_code="200",http_route="` + route + `"` + extra + `}`
	}
	var s []series
	add := func(name, labels, values string) { s = append(s, series{name + labels, values}) }
	for _, r := range []string{"/files/*", "/downloads/*", "/proxy/*"} {
		add("http_server_request_duration_seconds_count", files(r, ""), "0+60x20")
		add("http_server_request_duration_seconds_bucket", files(r, `,le="+Inf"`), "0+60x20")
		add("http_server_request_duration_seconds_bucket", files(r, `,le="1"`), "0+60x20")
		add("http_server_response_body_size_bytes_sum", files(r, ""), "0+62914560x20")
	}
	add("http_server_request_duration_seconds_bucket", files("/files/*", `,le="0.5"`), "0+54x20")
	add("http_server_request_duration_seconds_bucket", files("/files/*", `,le="0.1"`), "0+30x20")
	add("http_server_request_duration_seconds_count", files("/files/*", `,error_type="aborted"`), "0+6x20")
	add("fastpath_server_response_sendfile_size_bytes_sum", files("/files/*", ""), "0+62883840x20")
	add("fastpath_server_response_sendfile_size_bytes_sum", files("/downloads/*", ""), "0x20")
	add("http_server_request_duration_seconds_count",
		`{job="files",instance="a:8080",http_request_method="GET",http_response_status_code="500",http_route="/downloads/*",error_type="500"}`, "0+3x20")
	add("fastpath_server_response_splice_size_bytes_sum", files("/proxy/*", ""), "0+62883840x20")
	// The /downloads/* bodies fastpath saw copied, by reason: 45 a minute
	// behind a wrapper without ReadFrom, 15 compressed on the fly.
	add("fastpath_server_response_copied_size_bytes_sum", files("/downloads/*", `,fastpath_response_copy_reason="no_readfrom"`), "0+47162880x20")
	add("fastpath_server_response_copied_size_bytes_sum", files("/downloads/*", `,fastpath_response_copy_reason="encoded"`), "0+15720960x20")
	add("fastpath_server_response_copied_size_bytes_sum",
		`{job="other",instance="b:8080",http_request_method="GET",http_response_status_code="200",http_route="/files/*",fastpath_response_copy_reason="chunked"}`, "0+600x20")
	add("http_server_active_requests", `{job="files",instance="a:8080",http_request_method="GET",url_scheme="http"}`, "3x20")
	add("http_server_active_requests", `{job="files",instance="a:8080",http_request_method="HEAD",url_scheme="http"}`, "1x20")
	add("http_server_request_duration_seconds_count",
		`{job="other",instance="b:8080",http_request_method="GET",http_response_status_code="200",http_route="/files/*"}`, "0+600x20")
	add("http_server_active_requests", `{job="other",instance="b:8080",http_request_method="GET",url_scheme="http"}`, "100x20")
	return s
}

// dashboardWant is what each dashboard query returns at minute 10 of
// dashboardInput, by Query.Name. Rates are the slopes above, to the last bit
// of rate()'s arithmetic (promtool compares exactly). No sum adds more than
// two series: float addition is commutative but not associative, and
// Prometheus sums series in no fixed order. A query variable's
// expression is checked as count by (LABEL) (EXPR): the values it offers.
var dashboardWant = map[string][]sample{
	"Requests per second/A": {
		{`{http_route="/downloads/*"}`, 1.05},
		{`{http_route="/files/*"}`, 1.1},
		{`{http_route="/proxy/*"}`, 1},
	},
	"Request duration, p50 and p99/A": {
		{`{http_route="/downloads/*"}`, 0.5},
		{`{http_route="/files/*"}`, 0.1},
		{`{http_route="/proxy/*"}`, 0.5},
	},
	"Request duration, p50 and p99/B": {
		{`{http_route="/downloads/*"}`, 0.99},
		{`{http_route="/files/*"}`, 0.95},
		{`{http_route="/proxy/*"}`, 0.99},
	},
	"Bytes served per second/A": {
		{`{http_route="/downloads/*"}`, 1048576.0000000001},
		{`{http_route="/files/*"}`, 1048576.0000000001},
		{`{http_route="/proxy/*"}`, 1048576.0000000001},
	},
	"Bytes served per second/B": {
		{`{http_route="/downloads/*"}`, 0},
		{`{http_route="/files/*"}`, 1048064.0000000001},
		{`{http_route="/proxy/*"}`, 1048064.0000000001},
	},
	"Zero-copy share of bytes served/A": {
		{`{http_route="/downloads/*"}`, 0},
		{`{http_route="/files/*"}`, 0.9995117187500001},
		{`{http_route="/proxy/*"}`, 0.9995117187500001},
	},
	"Aborted responses and 5xx per second/A": {
		{`{http_route="/files/*"}`, 0.1},
	},
	"Aborted responses and 5xx per second/B": {
		{`{http_route="/downloads/*"}`, 0.05},
	},
	"Bytes copied per second, by reason/A": {
		{`{fastpath_response_copy_reason="encoded",http_route="/downloads/*"}`, 262016.00000000003},
		{`{fastpath_response_copy_reason="no_readfrom",http_route="/downloads/*"}`, 786048},
	},
	"Active requests/A": {
		{`{http_request_method="GET"}`, 3},
		{`{http_request_method="HEAD"}`, 1},
	},
	"variable job/job": {
		{`{job="files"}`, 5},
		{`{job="other"}`, 1},
	},
}

// TestDashboardQueries checks every PromQL expression of the dashboard, so
// that none can rot: each, with its variables expanded, must be a valid
// recording rule for promtool check rules, and must return exactly the
// samples dashboardWant gives for a known service. A query added to the
// dashboard without an expectation here fails the test, and so does an
// expectation whose query is gone.
func TestDashboardQueries(t *testing.T) {
	dir := deployDir(t)
	d, err := LoadDashboard(filepath.Join(dir, DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := d.Queries()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	tf := testFile{RuleFiles: []string{"dashboard-rules.yml"}, EvaluationInterval: "1m"}
	tc := testCase{Name: "dashboard queries", Interval: "1m", Input: dashboardInput()}
	seen := map[string]bool{}
	for i, q := range qs {
		if seen[q.Name()] {
			t.Fatalf("two dashboard queries are named %s", q.Name())
		}
		seen[q.Name()] = true
		expr, err := Expand(q.Expr, dashboardVars)
		if err != nil {
			t.Errorf("%s: %v", q.Name(), err)
			continue
		}
		if strings.HasPrefix(q.Panel, "variable ") {
			expr = fmt.Sprintf("count by (%s) (%s)", q.RefID, expr)
		}
		quoted, _ := json.Marshal(expr)
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, quoted)
		want, ok := dashboardWant[q.Name()]
		if !ok {
			t.Errorf("dashboard query %s has no expected samples in dashboardWant: %s", q.Name(), expr)
			continue
		}
		tc.Exprs = append(tc.Exprs, exprTest{Expr: expr, EvalTime: "10m", Samples: want})
	}
	var stale []string
	for name := range dashboardWant {
		if !seen[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("dashboardWant has queries the dashboard no longer has: %v", stale)
	}
	if t.Failed() {
		return
	}
	if err := os.WriteFile(filepath.Join(tmp, "dashboard-rules.yml"), []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tf.Tests = []testCase{tc}
	b, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "dashboard-test.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, tmp, "check", "rules", "dashboard-rules.yml")
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(out, want) {
		t.Errorf("promtool check rules: want %q:\n%s", want, out)
	}
	runPromtool(t, tmp, "test", "rules", "dashboard-test.yml")
}
