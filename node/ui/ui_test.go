package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesItsFilesAndNothingElse(t *testing.T) {
	h := Handler()
	tests := []struct {
		path string // after /ui/ is stripped
		code int
		body string // in the answer
		typ  string // Content-Type prefix
	}{
		{"", 200, "<title>Roost dashboard</title>", "text/html"},
		{"index.html", 200, "<title>Roost dashboard</title>", "text/html"}, // no redirect to ./, as http.FileServer makes
		{"app.js", 200, "fetch(", "text/javascript"},
		{"style.css", 200, "{", "text/css"},
		{"static", 404, "/ui/", ""},
		{"nope.html", 404, "/ui/", ""},
		{"\xff\xfe", 404, "/ui/", ""}, // http.FileServer: 500
		{"../ui.go", 404, "/ui/", ""},
		{"/index.html", 404, "/ui/", ""},
		{"index.html/", 404, "/ui/", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = tt.path
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.body) || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.typ) {
			t.Errorf("GET %q = %d %s %.40q, want %d %s with %q", tt.path, w.Code, w.Header().Get("Content-Type"), w.Body, tt.code, tt.typ, tt.body)
		}
	}
	// Conditional and range requests are served as http.ServeContent does.
	r := httptest.NewRequest("GET", "/", nil)
	r.URL.Path = "app.js"
	r.Header.Set("Range", "bytes=junk")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code >= 500 || w.Code/100 == 3 {
		t.Errorf("GET app.js with a bad range = %d", w.Code)
	}
	if w.Code == http.StatusOK && w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("no Content-Security-Policy")
	}
}
