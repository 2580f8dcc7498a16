package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printableKey is key as it is, or quoted as a Go string literal when printing
// it raw could mislead a terminal or break one-key-per-line output: when it is
// empty, holds spaces, control or other non-printing characters, or bytes that
// are not UTF-8, or starts with a double quote (so that a quoted line is never
// mistaken for a raw one). `roost keys` and `roost watch` print keys with it;
// their --json output carries keys unquoted, as JSON strings.
func printableKey(key string) string {
	if key == "" || strings.HasPrefix(key, `"`) || !utf8.ValidString(key) ||
		strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(key)
	}
	return key
}
