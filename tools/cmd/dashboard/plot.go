package main

import (
	"fmt"
	"image/color"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/fastpath-go/fastpath/tools/deploy"
)

// panelResult is one dashboard query and what Prometheus returned for it.
type panelResult struct {
	query  deploy.Query
	series []series
}

// legendVar matches a legendFormat reference, {{label}}.
var legendVar = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// legend renders a Grafana legendFormat for a series' labels.
func legend(format string, labels map[string]string) string {
	return legendVar.ReplaceAllStringFunc(format, func(ref string) string {
		return labels[legendVar.FindStringSubmatch(ref)[1]]
	})
}

// units scales a panel's values for its axis: the dashboard's Grafana unit
// by panel title.
var units = map[string]struct {
	label string
	scale float64
}{
	"Requests per second":                  {"requests/s", 1},
	"Request duration, p50 and p99":        {"seconds", 1},
	"Bytes served per second":              {"MiB/s", 1.0 / (1 << 20)},
	"Zero-copy share of bytes served":      {"%", 100},
	"Aborted responses and 5xx per second": {"responses/s", 1},
	"Active requests":                      {"requests", 1},
}

// palette gives each legend entry a color of its own.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// seriesKey is what a series' color follows: its route, or its method for
// the panel that has no route.
func seriesKey(labels map[string]string) string {
	if r, ok := labels["http_route"]; ok {
		return r
	}
	return labels["http_request_method"]
}

// render draws the panels, in the dashboard's order, two to a row, with the
// phase when the fast path was lost shaded, and writes a PNG.
func render(out, title string, results []panelResult, start time.Time, phases [4]time.Time) error {
	var titles []string
	byPanel := map[string][]panelResult{}
	for _, r := range results {
		if _, ok := byPanel[r.query.Panel]; !ok {
			titles = append(titles, r.query.Panel)
		}
		byPanel[r.query.Panel] = append(byPanel[r.query.Panel], r)
	}
	const cols = 2
	rows := (len(titles) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	minutes := func(t time.Time) float64 { return t.Sub(start).Minutes() }
	// One color per route (or method) across all panels.
	colors := map[string]color.Color{}
	var keys []string
	for _, r := range results {
		for _, s := range r.series {
			if k := seriesKey(s.labels); colors[k] == nil {
				colors[k] = color.Black
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		colors[k] = palette[i%len(palette)]
	}
	for i, pt := range titles {
		p := plot.New()
		p.Title.Text = pt
		p.Title.TextStyle.Font.Size = vg.Points(13)
		p.X.Label.Text = "minutes into the run"
		u, ok := units[pt]
		if !ok {
			return fmt.Errorf("panel %q has no unit here: add it to units", pt)
		}
		p.Y.Label.Text = u.label
		p.Y.Min = 0
		p.Legend.Top, p.Legend.Left = true, true
		p.Legend.TextStyle.Font.Size = vg.Points(9)
		p.Add(plotter.NewGrid())
		var lines []struct {
			name, key string
			xys       plotter.XYs
		}
		ymax := 0.0
		for _, r := range byPanel[pt] {
			for _, s := range r.series {
				var xys plotter.XYs
				for k, v := range s.values {
					if v != v { // NaN: no data at this step
						continue
					}
					xys = append(xys, plotter.XY{X: minutes(s.times[k]), Y: v * u.scale})
					ymax = max(ymax, v*u.scale)
				}
				if len(xys) > 0 {
					lines = append(lines, struct {
						name, key string
						xys       plotter.XYs
					}{legend(r.query.Legend, s.labels), seriesKey(s.labels), xys})
				}
			}
		}
		sort.SliceStable(lines, func(a, b int) bool { return lines[a].name < lines[b].name })
		if ymax == 0 {
			ymax = 1
		}
		p.Y.Max = ymax * 1.35 // room for the legend
		// The phase when /downloads/* lost the fast path.
		lost, err := plotter.NewPolygon(plotter.XYs{
			{X: minutes(phases[1]), Y: 0}, {X: minutes(phases[2]), Y: 0},
			{X: minutes(phases[2]), Y: p.Y.Max}, {X: minutes(phases[1]), Y: p.Y.Max},
		})
		if err != nil {
			return err
		}
		lost.Color = color.RGBA{0xff, 0xe0, 0xe0, 0xff}
		lost.LineStyle.Width = 0
		p.Add(lost)
		if i == 0 {
			p.Legend.Add("/downloads/* fast path lost", lost)
		}
		for _, l := range lines {
			line, err := plotter.NewLine(l.xys)
			if err != nil {
				return err
			}
			line.Color = colors[l.key]
			line.Width = vg.Points(1.5)
			if strings.HasPrefix(l.name, "p50 ") || strings.HasPrefix(l.name, "body ") {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			}
			p.Add(line)
			p.Legend.Add(l.name, line)
		}
		p.X.Min, p.X.Max = 0, minutes(phases[3])
		grid[i/cols][i%cols] = p
	}
	for i := len(titles); i < rows*cols; i++ {
		grid[i/cols][i%cols] = plot.New()
	}

	const width, height = 1400, 420
	img := vgimg.New(vg.Points(width), vg.Points(height*float64(rows)+40))
	dc := draw.New(img)
	head := draw.Crop(dc, 0, 0, dc.Max.Y-dc.Min.Y-vg.Points(40), 0)
	head.FillText(draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, vg.Points(14)), Handler: plot.DefaultTextHandler, XAlign: draw.XCenter},
		vg.Point{X: (dc.Max.X - dc.Min.X) / 2, Y: head.Min.Y + vg.Points(12)},
		fmt.Sprintf("Grafana dashboard %q (deploy/grafana), its queries over a real run: examples/fileserver (/files/*) and a server whose /downloads/* loses sendfile for a while", title))
	body := draw.Crop(dc, 0, 0, 0, -vg.Points(40))
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(20), PadY: vg.Points(20), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align(grid, tiles, body)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
