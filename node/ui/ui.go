package ui

import (
	"bytes"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"time"
)

//go:embed static
var static embed.FS

// FS is the dashboard's files: index.html, app.js, style.css.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has "static"
	}
	return sub
}

// index is the file served for the dashboard's root.
const index = "index.html"

// Handler serves the dashboard's files, with the request path relative to
// the dashboard's root (strip "/ui/" first): "" is index.html, a file of
// the dashboard is itself, anything else is a 404 — never a redirect and
// never a 5xx, whatever the path holds (http.FileServer redirects
// index.html and directories, and answers 500 for a name fs.FS refuses,
// such as one that is not UTF-8). The files carry no secret, so it needs
// no token; the page's data calls do.
func Handler() http.Handler {
	files := map[string][]byte{}
	err := fs.WalkDir(FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[name], err = fs.ReadFile(FS(), name)
		return err
	})
	if err != nil {
		panic(err) // the embedded tree is readable
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if name == "" {
			name = index
		}
		data, ok := files[name]
		if !ok {
			http.Error(w, "404 page not found: the dashboard is at /ui/", http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	})
}

// pointer is the page served at /ui, without the slash: the dashboard's
// relative links only resolve from /ui/, and an HTTP redirect there is what
// Roost never answers (a client follows one with its method and token), so
// the browser is sent on by the page itself.
const pointer = `<!doctype html>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0; url=ui/">
<title>Roost dashboard</title>
<p>The dashboard is at <a href="ui/">/ui/</a>.</p>
`

// Pointer serves the page that sends a browser from /ui to /ui/.
func Pointer(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	_, _ = io.WriteString(w, pointer)
}
