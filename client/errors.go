package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
)

// Sentinel errors. Errors from the node are *Error values that errors.Is
// matches against the sentinel of their code.
var (
	ErrBadRequest   = errors.New("client: bad request")            // 400: malformed or invalid input
	ErrUnauthorized = errors.New("client: unauthorized")           // wrong or missing token
	ErrNotFound     = errors.New("client: key not found")          // 404
	ErrCASMismatch  = errors.New("client: version does not match") // 409: compare-and-swap failed
	ErrTooLarge     = errors.New("client: too large")              // 413: key, value or batch over its limit
	ErrInternal     = errors.New("client: internal error")         // 500: a bug in the node
	ErrNotReady     = errors.New("client: not ready")              // 503, or no node answers
	ErrTimeout      = errors.New("client: timeout")                // no reply before the deadline
	ErrClosed       = errors.New("client: closed")                 // the Client or its connection is closed
	ErrProtocol     = errors.New("client: protocol error")         // a reply that does not follow docs/PROTOCOL.md
)

// sentinelOf maps a status code to its sentinel, nil when it has none.
func sentinelOf(code int) error {
	switch code {
	case wire.CodeBadRequest:
		return ErrBadRequest
	case wire.CodeUnauthorized:
		return ErrUnauthorized
	case wire.CodeNotFound:
		return ErrNotFound
	case wire.CodeConflict:
		return ErrCASMismatch
	case wire.CodeTooLarge:
		return ErrTooLarge
	case wire.CodeInternal:
		return ErrInternal
	case wire.CodeUnavailable:
		return ErrNotReady
	}
	return nil
}

// Error is an error the node answered, for one operation (Result.Code) or
// for a whole request (the Nats-Service-Error-Code header).
// errors.Is(err, ErrNotFound) and the like match it by Code.
type Error struct {
	Code    int    // an HTTP-like status code: wire.CodeNotFound etc.
	Message string // the node's reason; may be empty
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("roost: error %d", e.Code)
	}
	return fmt.Sprintf("roost: %s (%d)", e.Message, e.Code)
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s := sentinelOf(e.Code)
	return s != nil && s == target
}

// BatchError reports the operations of an MGet, MSet or MDelete that
// failed. Errors has one entry per operation, in the order given; nil entries
// succeeded. errors.Is(err, ErrCASMismatch) and the like hold when any
// operation failed that way.
type BatchError struct {
	Errors []error
}

// Failed returns how many operations failed.
func (e *BatchError) Failed() int {
	n := 0
	for _, err := range e.Errors {
		if err != nil {
			n++
		}
	}
	return n
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: %d of %d operations failed", e.Failed(), len(e.Errors))
	shown := 0
	for i, err := range e.Errors {
		if err == nil {
			continue
		}
		if shown == 3 {
			b.WriteString("; ...")
			break
		}
		fmt.Fprintf(&b, "; [%d] %v", i, err)
		shown++
	}
	return b.String()
}

// Unwrap returns the failed operations' errors, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Errors))
	for _, err := range e.Errors {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// resultErr turns a per-operation Result into an error for key, nil when it
// succeeded.
func resultErr(key string, r *wire.Result) error {
	if r.Code == wire.CodeOK {
		return nil
	}
	msg := r.Error
	if msg == "" {
		msg = "key " + strconv.Quote(key)
	}
	return &Error{Code: int(r.Code), Message: msg}
}

// serviceErr returns the whole-request error a reply carries in the NATS
// micro error headers, or nil when it carries none.
func serviceErr(m *nats.Msg) error {
	if m.Header == nil {
		return nil
	}
	codeStr := m.Header.Get(micro.ErrorCodeHeader)
	desc := m.Header.Get(micro.ErrorHeader)
	if codeStr == "" && desc == "" {
		return nil
	}
	code, err := strconv.Atoi(codeStr)
	if err != nil {
		code = wire.CodeInternal
		desc = fmt.Sprintf("%s (unreadable error code %q)", desc, codeStr)
	}
	return &Error{Code: code, Message: desc}
}

// requestErr explains why a request on subject got no usable reply. ctx is
// the context the request ran with.
func requestErr(ctx context.Context, subject string, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return timeoutErr(subject)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: no Roost node answers on %s (%w)", ErrNotReady, subject, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: request on %s: %w", ErrTooLarge, subject, err)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	if ctx.Err() != nil {
		return ctxErr(ctx, subject)
	}
	return fmt.Errorf("client: request on %s: %w", subject, err)
}

// ctxErr is the error of a call whose context ended: ctx.Err() itself when it
// was cancelled, an error matching both ErrTimeout and
// context.DeadlineExceeded when its deadline passed.
func ctxErr(ctx context.Context, subject string) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return timeoutErr(subject)
	}
	return err
}

func timeoutErr(subject string) error {
	return fmt.Errorf("%w: no reply on %s in time: %w", ErrTimeout, subject, context.DeadlineExceeded)
}
