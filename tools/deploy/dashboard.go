// Package deploy reads the Prometheus rules and the Grafana dashboard in the
// repository's deploy/ directory, so that tests can check every expression
// with promtool and tools/cmd/dashboard can plot the dashboard's own queries.
package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Dir returns the repository's deploy/ directory, found from this source
// file, so tests and commands work from any working directory inside the
// repository.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("deploy: cannot locate the source of package deploy")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "deploy")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	return dir, nil
}

// Paths of the files this package reads, relative to Dir.
const (
	RulesFile     = "prometheus/fastpath-rules.yml"
	RulesTestFile = "prometheus/fastpath-rules.test.yml"
	DashboardFile = "grafana/fastpath-dashboard.json"
)

// Query is one PromQL expression of the dashboard.
type Query struct {
	Panel  string // the panel's title, or "variable NAME" for a template variable
	RefID  string // the target's refId
	Legend string // the target's legendFormat
	Expr   string // the expression as written, with Grafana's variables
}

// Name identifies the query in messages and test tables.
func (q Query) Name() string { return q.Panel + "/" + q.RefID }

// Dashboard is the part of a Grafana dashboard that holds expressions.
type Dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
	Tmpl   struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int      `json:"id"`
	Title   string   `json:"title"`
	Type    string   `json:"type"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // rows hold panels
}

type target struct {
	RefID  string `json:"refId"`
	Expr   string `json:"expr"`
	Legend string `json:"legendFormat"`
}

type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// LoadDashboard reads a dashboard's JSON.
func LoadDashboard(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// labelValues matches a query variable's label_values(EXPR, LABEL).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// Queries returns every expression of the dashboard: each panel target's,
// and the series selector of each query variable's label_values. It is an
// error for a target to have no expression, or for a variable's query to be
// of a form this function does not know, so nothing escapes the checks.
func (d *Dashboard) Queries() ([]Query, error) {
	var out []Query
	var walk func(ps []panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("panel %q target %s has no expression", p.Title, t.RefID)
				}
				out = append(out, Query{Panel: p.Title, RefID: t.RefID, Legend: t.Legend, Expr: t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Tmpl.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			// A plain string query.
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				return nil, fmt.Errorf("variable %s: query is neither an object nor a string", v.Name)
			}
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q.Query))
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(EXPR, LABEL)", v.Name, q.Query)
		}
		out = append(out, Query{Panel: "variable " + v.Name, RefID: v.Name, Expr: m[1]})
	}
	return out, nil
}

// grafanaVar matches a Grafana variable reference: $name or ${name}.
var grafanaVar = regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?`)

// Expand replaces the Grafana variables in expr with vars (without the $),
// as Grafana does before it sends a query. A variable missing from vars is
// an error: an expression must not reach Prometheus with a $ left in it.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(ref string) string {
		name := grafanaVar.FindStringSubmatch(ref)[1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, ref)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown Grafana variables %v in %q", missing, expr)
	}
	return out, nil
}
