package harness

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"time"
)

// Layout of the chart, in SVG user units (pixels).
const (
	svgWidth    = 960
	svgHeight   = 440
	svgTop      = 70  // space for the title and the settings line
	svgBottom   = 380 // baseline of both panels
	svgLeftX0   = 80  // throughput panel
	svgLeftX1   = 420 //
	svgRightX0  = 540 // latency panel
	svgRightX1  = 920 //
	svgFontSize = 12
)

// Colours: one per target for throughput, one per percentile for latency.
var (
	targetColors     = map[string]string{NameEcho: "#8c8c8c", NameRoost: "#d95f02", NameKV: "#1b9e77"}
	percentileColors = [3]string{"#4e79a7", "#f28e2b", "#e15759"}
	percentileNames  = [3]string{"p50", "p99", "p99.9"}
)

// WriteSVG draws the report as one self-contained SVG image: throughput
// (median ops/s) as bars on the left, latency percentiles per target as
// grouped bars on a logarithmic scale on the right.
func (rep *Report) WriteSVG(w io.Writer) error {
	var b svgBuilder
	s := rep.Settings
	b.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight, svgFontSize)
	b.printf(`<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", svgWidth, svgHeight)
	b.text(svgWidth/2, 24, "middle", 16, "roost bench: "+s.Workload+" via "+s.Path)
	b.text(svgWidth/2, 44, "middle", svgFontSize, fmt.Sprintf("%s keys (%s), %d-byte values, %d workers per target, ack %s, batching %s, %s per target",
		Thousands(float64(s.Keys)), s.Dist, s.ValueSize, s.Concurrency, s.Ack, s.Batching, s.Duration))
	rep.throughputPanel(&b)
	rep.latencyPanel(&b)
	b.printf("</svg>\n")
	_, err := w.Write(b.buf.Bytes())
	return err
}

func (rep *Report) throughputPanel(b *svgBuilder) {
	b.text((svgLeftX0+svgLeftX1)/2, svgTop-6, "middle", 13, "throughput, ops/s (median round)")
	top := 0.0
	for _, r := range rep.Rows {
		top = max(top, r.OpsPerSec)
	}
	top = niceCeil(top * 1.1) // room above the tallest bar for its label
	height := float64(svgBottom - svgTop - 10)
	y := func(v float64) float64 { return svgBottom - v/top*height }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		b.gridLine(svgLeftX0, svgLeftX1, y(v))
		b.text(svgLeftX0-6, int(y(v))+4, "end", svgFontSize, Thousands(v))
	}
	n := max(len(rep.Rows), 1)
	slot := float64(svgLeftX1-svgLeftX0) / float64(n)
	for i, r := range rep.Rows {
		x := svgLeftX0 + slot*float64(i) + slot*0.2
		bw := slot * 0.6
		b.rect(x, y(r.OpsPerSec), bw, svgBottom-y(r.OpsPerSec), colorOf(r.Name))
		label := Thousands(r.OpsPerSec)
		if r.RatioToEcho > 0 {
			label += fmt.Sprintf(" (%.2f×)", r.RatioToEcho)
		}
		b.text(int(x+bw/2), int(y(r.OpsPerSec))-5, "middle", svgFontSize-1, label)
		b.text(int(x+bw/2), svgBottom+18, "middle", svgFontSize, r.Name)
	}
	b.line(svgLeftX0, svgBottom, svgLeftX1, svgBottom, "black")
}

func (rep *Report) latencyPanel(b *svgBuilder) {
	b.text((svgRightX0+svgRightX1)/2, svgTop-6, "middle", 13, "latency, µs (log scale)")
	lo, hi := math.Inf(1), 0.0
	for _, r := range rep.Rows {
		for _, d := range percentiles(r) {
			us := float64(d) / float64(time.Microsecond)
			lo, hi = min(lo, us), max(hi, us)
		}
	}
	if hi <= 0 {
		lo, hi = 1, 10
	}
	dLo := math.Floor(math.Log10(max(lo, 1)))
	dHi := max(math.Ceil(math.Log10(hi)), dLo+1)
	height := float64(svgBottom - svgTop - 10)
	y := func(us float64) float64 {
		return svgBottom - (math.Log10(max(us, 1))-dLo)/(dHi-dLo)*height
	}
	for d := dLo; d <= dHi; d++ {
		v := math.Pow(10, d)
		b.gridLine(svgRightX0, svgRightX1, y(v))
		b.text(svgRightX0-6, int(y(v))+4, "end", svgFontSize, Thousands(v))
	}
	n := max(len(rep.Rows), 1)
	slot := float64(svgRightX1-svgRightX0) / float64(n)
	for i, r := range rep.Rows {
		x0 := svgRightX0 + slot*float64(i) + slot*0.1
		bw := slot * 0.8 / 3
		for j, d := range percentiles(r) {
			us := float64(d) / float64(time.Microsecond)
			x := x0 + bw*float64(j)
			b.rect(x, y(us), bw-2, svgBottom-y(us), percentileColors[j])
			b.text(int(x+bw/2), int(y(us))-4, "middle", svgFontSize-2, Thousands(us))
		}
		b.text(int(x0+slot*0.4), svgBottom+18, "middle", svgFontSize, r.Name)
	}
	b.line(svgRightX0, svgBottom, svgRightX1, svgBottom, "black")
	for j, name := range percentileNames {
		x := float64(svgRightX0 + 120*j)
		b.rect(x, svgBottom+32, 12, 12, percentileColors[j])
		b.text(int(x)+18, svgBottom+43, "start", svgFontSize, name)
	}
}

func percentiles(r Row) [3]time.Duration { return [3]time.Duration{r.P50, r.P99, r.P999} }

func colorOf(name string) string {
	if c, ok := targetColors[name]; ok {
		return c
	}
	return "#7570b3"
}

// niceCeil rounds x up to 1, 2 or 5 times a power of ten: an axis' top.
func niceCeil(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// svgBuilder writes SVG elements; text is escaped.
type svgBuilder struct{ buf bytes.Buffer }

func (b *svgBuilder) printf(format string, args ...any) { fmt.Fprintf(&b.buf, format, args...) }

func (b *svgBuilder) text(x, y int, anchor string, size int, s string) {
	b.printf(`<text x="%d" y="%d" text-anchor="%s" font-size="%d">`, x, y, anchor, size)
	_ = xml.EscapeText(&b.buf, []byte(s))
	b.printf("</text>\n")
}

func (b *svgBuilder) rect(x, y, w, h float64, fill string) {
	b.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y, max(w, 0), max(h, 0), fill)
}

func (b *svgBuilder) line(x0, y0, x1, y1 int, stroke string) {
	b.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", x0, y0, x1, y1, stroke)
}

func (b *svgBuilder) gridLine(x0, x1 int, y float64) {
	b.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", x0, y, x1, y)
}
