// Package ui is Roost's dashboard: static HTML, JavaScript and CSS embedded
// in the binary (no internet needed), served by every node at /ui/. The page
// polls the node's JSON API every second — /v1/roost/members,
// /v1/roost/stats and /v1/status — and asks for the token once (kept in the
// tab's sessionStorage) when the node answers 403.
//
//	mux.Handle("GET /ui/", http.StripPrefix("/ui/", ui.Handler()))
package ui
