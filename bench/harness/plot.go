package harness

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Formats of WritePlot, named as the files' extensions without the dot.
const (
	PlotSVG = "svg"
	PlotPNG = "png"
	PlotPDF = "pdf"
)

// ErrPlotFormat is returned, wrapped, for a plot format other than PlotSVG,
// PlotPNG and PlotPDF.
var ErrPlotFormat = errors.New("harness: unsupported plot format")

// Size of the chart. A PNG has vgimg's 96 dots per inch: 960×440 pixels.
const (
	plotWidth   = 720 * vg.Inch / 72
	plotHeight  = 330 * vg.Inch / 72
	titleHeight = 44 * vg.Inch / 72 // the title and the settings line above both panels
	legendWidth = 56 * vg.Inch / 72 // the percentiles' key, right of the latency panel
	opsBarWidth = 60 * vg.Inch / 72 // one throughput bar
	latBarWidth = 22 * vg.Inch / 72 // one latency bar; a target has three side by side
)

// Colours: one per target for throughput, kept from run to run so that
// charts compare; one per percentile for latency.
var (
	targetColors = map[string]color.Color{
		NameEcho:  rgb(0x8c8c8c),
		NameRoost: rgb(0xd95f02),
		NameKV:    rgb(0x1b9e77),
	}
	otherColor       = rgb(0x7570b3)
	percentileColors = [3]color.Color{rgb(0x4e79a7), rgb(0xf28e2b), rgb(0xe15759)}
	percentileNames  = [3]string{"p50", "p99", "p99.9"}
	sans             = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// PlotFormat returns the format of a plot file named path, from its
// extension in any case: PlotSVG, PlotPNG or PlotPDF. Any other extension is
// an error wrapping ErrPlotFormat.
func PlotFormat(path string) (string, error) {
	ext := filepath.Ext(path)
	switch f := strings.ToLower(strings.TrimPrefix(ext, ".")); f {
	case PlotSVG, PlotPNG, PlotPDF:
		return f, nil
	}
	return "", fmt.Errorf("%w %q: want .svg, .png or .pdf", ErrPlotFormat, ext)
}

// WritePlot draws the report as one image in format (PlotSVG, PlotPNG or
// PlotPDF): the run's settings on top, throughput (median ops/s) per target
// as bars on the left, latency percentiles per target as grouped bars on a
// logarithmic scale on the right.
func (rep *Report) WritePlot(w io.Writer, format string) error {
	canvas, err := newCanvas(format)
	if err != nil {
		return err
	}
	ops, err := rep.throughputPlot()
	if err != nil {
		return err
	}
	lat, key, err := rep.latencyPlot()
	if err != nil {
		return err
	}

	dc := draw.New(canvas)
	dc.FillPolygon(color.White, []vg.Point{dc.Min, {X: dc.Min.X, Y: dc.Max.Y}, dc.Max, {X: dc.Max.X, Y: dc.Min.Y}})
	rep.drawTitle(draw.Crop(dc, 0, 0, dc.Max.Y-titleHeight, 0))
	body := draw.Crop(dc, 0, 0, 0, -titleHeight)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: 24, PadLeft: 8, PadRight: 8, PadBottom: 8}
	ops.Draw(tiles.At(body, 0, 0))
	right := tiles.At(body, 1, 0)
	lat.Draw(draw.Crop(right, 0, -legendWidth, 0, 0))                          // all but a strip on the right,
	key.Draw(draw.Crop(right, right.Max.X-right.Min.X-legendWidth+8, 0, 0, 0)) // which has the key, 8 pt from the panel

	_, err = canvas.WriteTo(w)
	return err
}

// newCanvas returns an empty canvas of the chart's size that writes format.
func newCanvas(format string) (vg.CanvasWriterTo, error) {
	switch format {
	case PlotSVG:
		return vgsvg.New(plotWidth, plotHeight), nil
	case PlotPNG:
		return vgimg.PngCanvas{Canvas: vgimg.New(plotWidth, plotHeight)}, nil
	case PlotPDF:
		return vgpdf.New(plotWidth, plotHeight), nil
	}
	return nil, fmt.Errorf("%w %q: want svg, png or pdf", ErrPlotFormat, format)
}

// drawTitle writes what ran, and how, centred on c.
func (rep *Report) drawTitle(c draw.Canvas) {
	s := rep.Settings
	head := fmt.Sprintf("roost bench: %s via %s, %s", s.workloadText(), s.Path, s.whereText())
	line := fmt.Sprintf("%s keys (%s), %d-byte values, %d workers per target, ack %s, batching %s, %s per target",
		Thousands(float64(s.Keys)), s.distText(), s.ValueSize, s.Concurrency, s.Ack, s.Batching, s.Duration)

	x := (c.Min.X + c.Max.X) / 2
	c.FillText(textStyle(15, draw.XCenter, draw.YTop), vg.Point{X: x, Y: c.Max.Y - 8}, head)
	c.FillText(textStyle(10, draw.XCenter, draw.YTop), vg.Point{X: x, Y: c.Max.Y - 28}, line)
}

// throughputPlot has one bar per target, labelled with its ops/s and its
// ratio to echo.
func (rep *Report) throughputPlot() (*plot.Plot, error) {
	p := newPanel("throughput, ops/s (median round)")
	labels := &plotter.Labels{Offset: vg.Point{Y: 3}}
	top := 0.0
	for i, r := range rep.Rows {
		bar, err := plotter.NewBarChart(plotter.Values{r.OpsPerSec}, opsBarWidth)
		if err != nil {
			return nil, fmt.Errorf("harness: plot %s: %w", r.Name, err)
		}
		bar.XMin, bar.Color, bar.LineStyle.Width = float64(i), targetColor(r.Name), 0
		p.Add(bar)

		label := Thousands(r.OpsPerSec)
		if r.RatioToEcho > 0 {
			label += fmt.Sprintf(" (%.2f×)", r.RatioToEcho)
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: r.OpsPerSec})
		labels.Labels = append(labels.Labels, label)
		labels.TextStyle = append(labels.TextStyle, textStyle(10, draw.XCenter, draw.YBottom))
		top = max(top, r.OpsPerSec)
	}
	p.Add(labels)
	p.NominalX(rowNames(rep.Rows)...)
	p.Y.Min, p.Y.Max = 0, max(top*1.12, 1) // room above the tallest bar for its label
	p.Y.Tick.Marker = thousandsTicks{}
	return p, nil
}

// latencyPlot has three bars per target, p50, p99 and p99.9 in µs, on a
// logarithmic scale from the power of ten below the lowest to one above the
// highest; and the key to the bars' colours.
func (rep *Report) latencyPlot() (*plot.Plot, *plot.Legend, error) {
	p := newPanel("latency, µs (log scale)")
	lo, hi := math.Inf(1), 0.0
	for _, r := range rep.Rows {
		for _, us := range percentilesUS(r) {
			lo, hi = min(lo, us), max(hi, us)
		}
	}
	if hi <= 0 {
		lo, hi = 1, 10
	}
	dLo := math.Floor(math.Log10(max(lo, 1)))
	dHi := max(math.Ceil(math.Log10(hi*1.3)), dLo+1) // room above the tallest bar for its label
	floor := math.Pow(10, dLo)

	key := plot.NewLegend()
	key.Top, key.Left = true, true
	key.TextStyle = textStyle(11, draw.XLeft, draw.YBottom)
	key.YOffs = -24 // level with the panel's top, below its title
	key.ThumbnailWidth, key.Padding = 12, 3
	for j, pname := range percentileNames {
		// A bar on a log scale cannot grow from 0: each stands on an
		// unplotted base as high as the floor.
		base := make(plotter.Values, len(rep.Rows))
		heights := make(plotter.Values, len(rep.Rows))
		labels := &plotter.Labels{Offset: vg.Point{X: vg.Length(j-1) * latBarWidth, Y: 2}}
		for i, r := range rep.Rows {
			us := percentilesUS(r)[j]
			top := max(us, floor)
			base[i], heights[i] = floor, top-floor
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: top})
			labels.Labels = append(labels.Labels, Thousands(us))
			labels.TextStyle = append(labels.TextStyle, textStyle(8, draw.XCenter, draw.YBottom))
		}
		under, err := plotter.NewBarChart(base, latBarWidth)
		if err != nil {
			return nil, nil, fmt.Errorf("harness: plot %s: %w", pname, err)
		}
		under.Offset = vg.Length(j-1) * latBarWidth
		bar, err := plotter.NewBarChart(heights, latBarWidth-2)
		if err != nil {
			return nil, nil, fmt.Errorf("harness: plot %s: %w", pname, err)
		}
		bar.StackOn(under)
		bar.Color, bar.LineStyle.Width = percentileColors[j], 0
		p.Add(bar, labels)
		key.Add(pname, bar)
	}
	p.NominalX(rowNames(rep.Rows)...)
	p.Y.Scale = plot.LogScale{}
	p.Y.Min, p.Y.Max = floor, math.Pow(10, dHi)
	p.Y.Tick.Marker = decadeTicks(int(dLo), int(dHi))
	return p, &key, nil
}

func rowNames(rows []Row) []string {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return names
}

// percentilesUS returns a row's p50, p99 and p99.9 in microseconds.
func percentilesUS(r Row) [3]float64 {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return [3]float64{us(r.P50), us(r.P99), us(r.P999)}
}

// newPanel returns an empty plot titled title, in the chart's fonts, with
// horizontal grid lines.
func newPanel(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 12)
	p.Title.Padding = 6
	p.X.Tick.Label.Font = font.From(sans, 11)
	p.Y.Tick.Label.Font = font.From(sans, 10)
	p.X.Tick.Length = 0
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal.Color = rgb(0xdddddd)
	p.Add(grid)
	return p
}

func textStyle(size vg.Length, x text.XAlignment, y text.YAlignment) text.Style {
	return text.Style{Color: color.Black, Font: font.From(sans, size), XAlign: x, YAlign: y, Handler: plot.DefaultTextHandler}
}

func targetColor(name string) color.Color {
	if c, ok := targetColors[name]; ok {
		return c
	}
	return otherColor
}

func rgb(hex uint32) color.RGBA {
	return color.RGBA{R: uint8(hex >> 16), G: uint8(hex >> 8), B: uint8(hex), A: 0xff}
}

// thousandsTicks are plot's default ticks labelled as the table prints
// numbers: 60 000, not 60000.
type thousandsTicks struct{}

func (thousandsTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if !ticks[i].IsMinor() {
			ticks[i].Label = Thousands(ticks[i].Value)
		}
	}
	return ticks
}

// decadeTicks labels every power of ten from 10^lo to 10^hi, with unlabelled
// ticks at 2..9 times each.
func decadeTicks(lo, hi int) plot.ConstantTicks {
	var ticks plot.ConstantTicks
	for d := lo; d <= hi; d++ {
		v := math.Pow(10, float64(d))
		ticks = append(ticks, plot.Tick{Value: v, Label: Thousands(v)})
		for m := 2; m < 10 && d < hi; m++ {
			ticks = append(ticks, plot.Tick{Value: float64(m) * v})
		}
	}
	return ticks
}
