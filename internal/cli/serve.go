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

// serveFlags are the flags of runnel serve; each overrides the same setting
// of the config file only when given.
type serveFlags struct {
	configPath     string
	dataDir        string
	kafkaAddr      string
	advertisedAddr string
	httpAddr       string
	objectStore    string
	etcdEndpoints  []string
	brokerID       int32
	clusterID      string
	rack           string
	logLevel       string
	logFormat      string
}

func newServeCommand() *cobra.Command {
	sf := &serveFlags{}
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
			cfg, err := sf.buildConfig(cmd.Flags())
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
	f.StringVarP(&sf.configPath, "config", "c", "", "YAML config file (unknown keys are errors)")
	f.StringVar(&sf.dataDir, "data-dir", "", "directory for the embedded etcd member, local objects and caches")
	f.StringVar(&sf.kafkaAddr, "kafka-addr", "", "host:port the Kafka listener binds")
	f.StringVar(&sf.advertisedAddr, "advertised-addr", "", "host:port clients are told to connect to (default: --kafka-addr)")
	f.StringVar(&sf.httpAddr, "http-addr", "", "host:port of the HTTP server (metrics, REST APIs)")
	f.StringVar(&sf.objectStore, "object-store", "", "object store URL (file://, s3://, gs://, azblob://; default: <data-dir>/objects)")
	f.StringSliceVar(&sf.etcdEndpoints, "etcd-endpoints", nil, "comma-separated external etcd endpoints (default: run an embedded member)")
	f.Int32Var(&sf.brokerID, "broker-id", 0, "this broker's node id")
	f.StringVar(&sf.clusterID, "cluster-id", "", "cluster id reported to clients")
	f.StringVar(&sf.rack, "rack", "", "this broker's rack (availability zone)")
	f.StringVar(&sf.logLevel, "log-level", "", "debug, info, warn or error")
	f.StringVar(&sf.logFormat, "log-format", "", "text or json")
	return cmd
}

// buildConfig loads the file (or the defaults), applies the flags the user
// set, and validates the result.
func (sf *serveFlags) buildConfig(fs *pflag.FlagSet) (config.Config, error) {
	cfg := config.Default()
	if sf.configPath != "" {
		var err error
		if cfg, err = config.Load(sf.configPath); err != nil {
			return config.Config{}, err
		}
	}
	sf.apply(fs, &cfg)
	if err := cfg.Validate(); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}

// apply copies every flag the user set into cfg.
func (sf *serveFlags) apply(fs *pflag.FlagSet, cfg *config.Config) {
	set := func(name string, dst *string, v string) {
		if fs.Changed(name) {
			*dst = v
		}
	}
	set("data-dir", &cfg.DataDir, sf.dataDir)
	set("kafka-addr", &cfg.KafkaAddr, sf.kafkaAddr)
	set("advertised-addr", &cfg.AdvertisedAddr, sf.advertisedAddr)
	set("http-addr", &cfg.HTTPAddr, sf.httpAddr)
	set("object-store", &cfg.ObjectStore, sf.objectStore)
	set("cluster-id", &cfg.ClusterID, sf.clusterID)
	set("rack", &cfg.Rack, sf.rack)
	set("log-level", &cfg.Log.Level, sf.logLevel)
	set("log-format", &cfg.Log.Format, sf.logFormat)
	if fs.Changed("broker-id") {
		cfg.BrokerID = sf.brokerID
	}
	if fs.Changed("etcd-endpoints") {
		eps := make([]string, 0, len(sf.etcdEndpoints))
		for _, e := range sf.etcdEndpoints {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
		cfg.Etcd.Endpoints = eps
	}
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
