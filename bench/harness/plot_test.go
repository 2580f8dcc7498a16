package harness

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"testing"
	"time"
)

func TestPlotFormat(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{"bench.svg", PlotSVG},
		{"/tmp/B.PNG", PlotPNG},
		{"out/run.v2.pdf", PlotPDF},
		{"bench.jpg", ""},
		{"bench", ""},
		{"svg", ""},
	}
	for _, tt := range tests {
		got, err := PlotFormat(tt.path)
		if tt.want == "" {
			if !errors.Is(err, ErrPlotFormat) {
				t.Errorf("PlotFormat(%q) = %q, %v; want ErrPlotFormat", tt.path, got, err)
			}
			continue
		}
		if got != tt.want || err != nil {
			t.Errorf("PlotFormat(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
	if err := sampleReport().WritePlot(io.Discard, "jpeg"); !errors.Is(err, ErrPlotFormat) {
		t.Errorf("WritePlot(jpeg) = %v, want ErrPlotFormat", err)
	}
}

func TestPlotSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WritePlot(&buf, PlotSVG); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	var root string
	depth := 0
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = tok.Name.Local
				if tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q, want SVG's", tok.Name.Space)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if root != "svg" || depth != 0 {
		t.Fatalf("root element %q, depth at end %d: want one closed <svg>", root, depth)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{
		"roost bench: get via text, 1 node",
		"100 000 keys (uniform), 100-byte values, 32 workers per target, ack primary, batching off, 6s per target",
		"throughput, ops/s (median round)", "latency, µs (log scale)",
		"|echo|", "|roost|", "|kv|", "63 000 (0.70×)", "|4 500|", "|p99.9|",
	} {
		if !strings.Contains("|"+all+"|", want) {
			t.Errorf("SVG text lacks %q:\n%s", want, all)
		}
	}
}

func TestPlotPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WritePlot(&buf, PlotPNG); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got != (image.Point{X: 960, Y: 440}) {
		t.Fatalf("size %v, want 960×440", got)
	}
	// Every bar's colour is there, more pixels of it than antialiasing
	// makes. A target's colour is the same in every chart, so that charts
	// compare: changing one fails here.
	want := map[string]color.Color{
		"echo": rgb(0x8c8c8c), "roost": rgb(0xd95f02), "kv": rgb(0x1b9e77),
		"p50": rgb(0x4e79a7), "p99": rgb(0xf28e2b), "p99.9": rgb(0xe15759),
	}
	for name, c := range want {
		if n := countColor(img, c); n < 200 {
			t.Errorf("%d pixels of %s's colour %v, want a bar's worth", n, name, c)
		}
	}
	if n := countColor(img, color.White); n > 960*440*95/100 {
		t.Errorf("%d of %d pixels white: the image is nearly blank", n, 960*440)
	}
}

func TestPlotPDF(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WritePlot(&buf, PlotPDF); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) || buf.Len() < 1000 {
		t.Errorf("not a PDF: %d bytes starting %q", buf.Len(), buf.Bytes()[:min(buf.Len(), 16)])
	}
}

// A run without baselines whose requests all failed has one row of zeros:
// still a chart, not a panic of the log scale.
func TestPlotZeros(t *testing.T) {
	rep := sampleReport()
	rep.Rows = []Row{{Name: NameRoost, Errors: 10, FirstErr: "timeout"}}
	for _, format := range []string{PlotSVG, PlotPNG, PlotPDF} {
		if err := rep.WritePlot(io.Discard, format); err != nil {
			t.Errorf("%s: %v", format, err)
		}
	}
	rep.Rows[0].P50, rep.Rows[0].P99, rep.Rows[0].P999 = 0, time.Millisecond, time.Millisecond
	if err := rep.WritePlot(io.Discard, PlotSVG); err != nil {
		t.Errorf("zero p50: %v", err)
	}
}

func countColor(img image.Image, c color.Color) int {
	r0, g0, b0, a0 := c.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, b, a := img.At(x, y).RGBA(); r == r0 && g == g0 && b == b0 && a == a0 {
				n++
			}
		}
	}
	return n
}
