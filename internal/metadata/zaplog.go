package metadata

import (
	"context"
	"log/slog"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that forwards etcd's zap records at error level
// and above to the injected slog logger, so etcd's very chatty logging stays
// quiet while its real failures still reach the broker's log.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func newZapLogger(log *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{log: log.With("component", "etcd")})
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.ErrorLevel }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	level := slog.LevelError
	attrs := make([]slog.Attr, 0, len(enc.Fields)+1)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
		if s, ok := v.(string); ok && benign(s) {
			level = slog.LevelDebug
		}
	}
	c.log.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// benignErrors are errors etcd logs at error level although nothing is
// wrong: its listeners closing during a normal shutdown, and the storage
// version check that runs before the first raft entry is applied (it is
// retried). They are demoted to debug so a healthy broker logs no errors.
var benignErrors = []string{
	"use of closed network connection",
	"http: Server closed",
	"mux: server closed",
	"missing term information",
}

func benign(s string) bool {
	for _, b := range benignErrors {
		if strings.Contains(s, b) {
			return true
		}
	}
	return false
}
