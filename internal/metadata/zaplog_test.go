package metadata

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	tests := []struct {
		name string
		log  func(*zap.Logger)
		want string // "" = nothing logged at info or above
	}{
		{"info dropped", func(l *zap.Logger) { l.Info("chatty", zap.String("k", "v")) }, ""},
		{"warn dropped", func(l *zap.Logger) { l.Warn("slow") }, ""},
		{"error forwarded", func(l *zap.Logger) { l.Error("disk failed", zap.Error(errors.New("EIO"))) },
			`level=ERROR msg="disk failed" component=etcd error=EIO`},
		{"with fields", func(l *zap.Logger) { l.With(zap.String("member", "m1")).Error("boom") }, "member=m1"},
		{"benign shutdown demoted", func(l *zap.Logger) { l.Error("serve failed", zap.Error(errors.New("mux: server closed"))) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(newZapLogger(slog.New(slog.NewTextHandler(&buf, nil))))
			got := buf.String()
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("logged %q, want %q", got, tt.want)
			}
		})
	}
}
