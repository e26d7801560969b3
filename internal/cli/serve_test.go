package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
)

func TestServeFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "runnel.yaml")
	yaml := "data-dir: " + filepath.Join(dir, "from-file") + "\nkafka-addr: 127.0.0.1:9192\nrack: file-rack\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c config.Config)
	}{
		{
			name: "file only",
			args: []string{"--config", path},
			check: func(t *testing.T, c config.Config) {
				if c.KafkaAddr != "127.0.0.1:9192" || c.Rack != "file-rack" {
					t.Errorf("file values not loaded: %+v", c)
				}
			},
		},
		{
			name: "flags win",
			args: []string{"--config", path, "--kafka-addr", "127.0.0.1:9292", "--broker-id", "7",
				"--etcd-endpoints", "http://127.0.0.1:2379, http://127.0.0.1:2380", "--log-format", "json",
				"--clock-offset", "-5m"},
			check: func(t *testing.T, c config.Config) {
				if c.KafkaAddr != "127.0.0.1:9292" || c.BrokerID != 7 || c.Log.Format != "json" || c.ClockOffset != -5*time.Minute {
					t.Errorf("flags not applied: %+v", c)
				}
				if c.Rack != "file-rack" {
					t.Errorf("unset flag overrode the file: rack = %q", c.Rack)
				}
				if len(c.Etcd.Endpoints) != 2 || c.Etcd.Endpoints[1] != "http://127.0.0.1:2380" {
					t.Errorf("etcd endpoints = %q", c.Etcd.Endpoints)
				}
			},
		},
		{
			name: "defaults without file",
			args: []string{"--data-dir", dir},
			check: func(t *testing.T, c config.Config) {
				want := config.Default()
				if c.KafkaAddr != want.KafkaAddr || c.DataDir != dir {
					t.Errorf("got %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newServeCommand()
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := buildServeConfig(cmd.Flags())
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestServeBadConfigFile(t *testing.T) {
	cmd := newServeCommand()
	if err := cmd.ParseFlags([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buildServeConfig(cmd.Flags()); err == nil {
		t.Fatal("want an error for a missing config file")
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "topic", "t")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "shown" || strings.Contains(buf.String(), "hidden") {
		t.Fatalf("log output %q (%v)", buf.String(), err)
	}
	if _, err := newLogger(&buf, "info", "xml"); err == nil {
		t.Fatal("want error for format xml")
	}
	if _, err := newLogger(&buf, "loud", "text"); err == nil {
		t.Fatal("want error for level loud")
	}
}
