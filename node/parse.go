package node

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// Headers of the NATS text API.
const (
	hdrVersion = "Roost-Version" // reply: the key's version
	hdrFlags   = "Roost-Flags"   // request (set) and reply (get): opaque uint64
	hdrTTL     = "Roost-TTL"     // request (set): Go duration or whole seconds
	hdrCAS     = "Roost-CAS"     // request (set, del): expected version; 0 = only if absent
	hdrAck     = "Roost-Ack"     // request (set, del): primary or all
	hdrExpires = "Roost-Expires" // reply (get): absolute expiry, RFC 3339, when the key has a TTL
	hdrTouch   = "Roost-Touch"   // request (get): read and reset the expiry to this TTL from now
)

// apiError is a failure with the status code the API answers with.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &apiError{code: wire.CodeBadRequest, msg: fmt.Sprintf(format, args...)}
}

func errTooLarge(format string, args ...any) error {
	return &apiError{code: wire.CodeTooLarge, msg: fmt.Sprintf(format, args...)}
}

// codeOf maps any error of the API path to its status code.
func codeOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code
	}
	return storeCode(err)
}

// ParseTTL reads a TTL given as a Go duration ("1.5s", "10m") or whole
// seconds ("30"), as Roost-TTL, `roost set --ttl` and HTTP's ?ttl= take it.
// Empty and zero mean no expiry; negative, unparsable and over-100-year TTLs
// are errors.
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs < 0 || secs > int64(MaxTTL/time.Second) {
			return 0, fmt.Errorf("bad TTL %q: want 0..%d seconds", s, int64(MaxTTL/time.Second))
		}
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad TTL %q: want a Go duration like 1.5s or 10m, or whole seconds", s)
	}
	if d < 0 || d > MaxTTL {
		return 0, fmt.Errorf("bad TTL %q: want 0s..%s", s, MaxTTL)
	}
	return d, nil
}

// parseTTL is ParseTTL for the API: a bad TTL is a 400.
func parseTTL(s string) (time.Duration, error) {
	d, err := ParseTTL(s)
	if err != nil {
		return 0, errBadRequest("%v", err)
	}
	return d, nil
}

// MaxTTL is the longest TTL: it keeps absolute expiry times far from overflow.
const MaxTTL = 100 * 365 * 24 * time.Hour

// parseUint reads an unsigned decimal header value such as a CAS version or flags.
func parseUint(header, s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, errBadRequest("bad %s %q: want an unsigned decimal integer", header, s)
	}
	return v, nil
}

// parseAck checks an ack mode; "" means the default, primary.
func parseAck(s string) (string, error) {
	switch strings.TrimSpace(s) {
	case "", wire.AckPrimary:
		return wire.AckPrimary, nil
	case wire.AckAll:
		return wire.AckAll, nil
	}
	return "", errBadRequest("bad ack mode %q: want %q or %q", s, wire.AckPrimary, wire.AckAll)
}

// wildcardToken returns the 1-based position and text of the first
// dot-separated token of key that is a NATS wildcard, "*" or ">", or 0 when
// there is none. Such a key is refused on every API: in a request subject
// (roost.get.users.*) a wildcard token reads as a pattern, yet a publisher's
// subject is always taken literally, so the request would act on one key
// named "users.*" and, for a delete, answer success; a NATS server refuses
// such a subject from a client in pedantic mode, and NATS's own KV refuses
// such keys. "*" and ">" inside a token ("a*", "x>y") are ordinary characters.
func wildcardToken(key string) (int, string) {
	if strings.IndexByte(key, '*') < 0 && strings.IndexByte(key, '>') < 0 { // two byte scans: ContainsAny builds a set per call
		return 0, ""
	}
	for i, tok := range strings.Split(key, ".") {
		if tok == "*" || tok == ">" {
			return i + 1, tok
		}
	}
	return 0, ""
}
