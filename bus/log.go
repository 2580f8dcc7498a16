package bus

import (
	"context"
	"fmt"
	"log/slog"
)

// natsLogger sends the embedded server's log lines to slog. Fatalf is logged
// at error level and handed to fatal, never ending the process.
type natsLogger struct {
	log   *slog.Logger
	fatal func(msg string) // called with each Fatalf message; may be nil
}

func (l natsLogger) Noticef(format string, v ...any) { l.emit(slog.LevelInfo, format, v) }
func (l natsLogger) Warnf(format string, v ...any)   { l.emit(slog.LevelWarn, format, v) }
func (l natsLogger) Fatalf(format string, v ...any) {
	l.emit(slog.LevelError, format, v)
	if l.fatal != nil {
		l.fatal(fmt.Sprintf(format, v...))
	}
}
func (l natsLogger) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v) }
func (l natsLogger) Debugf(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l natsLogger) Tracef(format string, v ...any) { l.emit(slog.LevelDebug-4, format, v) }

func (l natsLogger) emit(level slog.Level, format string, v []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}
