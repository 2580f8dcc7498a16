package node

import "strings"

// The reserved key space. Roost keeps some of its own state in its store,
// replicated like any key: the service catalog and the runtime config rules
// live under ReservedPrefix. No API accepts a user key that begins with it
// (checkKey), so no user key can collide with them, and listings of user
// keys leave them out.
//
// The prefix begins with a NUL byte: a NATS subject token may not carry it in
// practice (clients refuse control characters in subjects), consul keys never
// do, and a binary-API key that begins with NUL is refused with a 400.
const ReservedPrefix = "\x00roost/"

// reserved reports whether key belongs to Roost's own key space.
func reserved(key string) bool { return strings.HasPrefix(key, "\x00") }

// reservedKey names one of Roost's own keys: the area (such as "svc" or
// "config") and the name within it.
func reservedKey(area, name string) string { return ReservedPrefix + area + "/" + name }
