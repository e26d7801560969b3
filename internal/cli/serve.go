package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runnel-dev/runnel/internal/broker"
	"github.com/runnel-dev/runnel/internal/config"
)

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Runnel broker",
		Long: `Run a Runnel broker until SIGINT or SIGTERM, then shut down gracefully.

Settings come from the defaults, then the YAML file given with --config, then
the flags given on the command line (a flag overrides the file). With no
settings at all the broker runs alone: an embedded etcd member and a local
object store, both in --data-dir.`,
		Example: `  # everything embedded, data in ./data
  runnel serve --data-dir ./data

  # from a config file, overriding the listener
  runnel serve --config runnel.yaml --kafka-addr 0.0.0.0:9092 --advertised-addr broker1:9092

  # one broker of a cluster sharing an object store and an external etcd
  runnel serve --broker-id 2 --object-store s3://bucket?region=eu-west-1 \
      --etcd-endpoints http://etcd1:2379,http://etcd2:2379,http://etcd3:2379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := buildServeConfig(cmd.Flags())
			if err != nil {
				return err
			}
			log, err := newLogger(cmd.ErrOrStderr(), cfg.Log.Level, cfg.Log.Format)
			if err != nil {
				return err
			}
			err = broker.Run(cmd.Context(), cfg, log)
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringP("config", "c", "", "YAML config file (unknown keys are errors)")
	f.String("data-dir", "", "directory for the embedded etcd member, local objects and caches")
	f.String("kafka-addr", "", "host:port the Kafka listener binds")
	f.String("advertised-addr", "", "host:port clients are told to connect to (default: --kafka-addr)")
	f.String("http-addr", "", "host:port of the HTTP server (metrics, REST APIs)")
	f.String("registry-addr", "", "host:port of the schema registry REST API")
	f.String("object-store", "", "object store URL (file://, s3://, gs://, azblob://; default: <data-dir>/objects)")
	f.StringSlice("etcd-endpoints", nil, "comma-separated external etcd endpoints (default: run an embedded member)")
	f.Int32("broker-id", 0, "this broker's node id")
	f.String("cluster-id", "", "cluster id reported to clients")
	f.String("rack", "", "this broker's rack (availability zone)")
	f.String("log-level", "", "debug, info, warn or error")
	f.String("log-format", "", "text or json")
	f.Duration("clock-offset", 0, "fault injection for tests: add this duration (may be negative) to the broker's wall clock for the log")
	return cmd
}

// buildServeConfig starts from the defaults or the --config file, applies
// the flags the user set (a flag overrides the file), and validates the
// result.
func buildServeConfig(fs *pflag.FlagSet) (config.Config, error) {
	cfg := config.Default()
	if path, _ := fs.GetString("config"); path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return config.Config{}, err
		}
	}
	if err := applyServeFlags(fs, &cfg); err != nil {
		return config.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}

// applyServeFlags copies every flag the user set into cfg.
func applyServeFlags(fs *pflag.FlagSet, cfg *config.Config) error {
	strs := []struct {
		name string
		dst  *string
	}{
		{"data-dir", &cfg.DataDir},
		{"kafka-addr", &cfg.KafkaAddr},
		{"advertised-addr", &cfg.AdvertisedAddr},
		{"http-addr", &cfg.HTTPAddr},
		{"registry-addr", &cfg.RegistryAddr},
		{"object-store", &cfg.ObjectStore},
		{"cluster-id", &cfg.ClusterID},
		{"rack", &cfg.Rack},
		{"log-level", &cfg.Log.Level},
		{"log-format", &cfg.Log.Format},
	}
	for _, s := range strs {
		if !fs.Changed(s.name) {
			continue
		}
		v, err := fs.GetString(s.name)
		if err != nil {
			return err
		}
		*s.dst = v
	}
	if fs.Changed("broker-id") {
		id, err := fs.GetInt32("broker-id")
		if err != nil {
			return err
		}
		cfg.BrokerID = id
	}
	if fs.Changed("clock-offset") {
		d, err := fs.GetDuration("clock-offset")
		if err != nil {
			return err
		}
		cfg.ClockOffset = d
	}
	if fs.Changed("etcd-endpoints") {
		raw, err := fs.GetStringSlice("etcd-endpoints")
		if err != nil {
			return err
		}
		eps := make([]string, 0, len(raw))
		for _, e := range raw {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
		cfg.Etcd.Endpoints = eps
	}
	return nil
}

// newLogger builds the server logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info", "":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if w == nil {
		w = os.Stderr
	}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
