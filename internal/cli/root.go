package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// envBrokers is the environment variable that sets the default of --brokers.
const envBrokers = "RUNNEL_BROKERS"

// defaultBrokers is used when neither --brokers nor RUNNEL_BROKERS is set.
const defaultBrokers = "127.0.0.1:9092"

// globalOptions are the flags shared by every client command.
type globalOptions struct {
	brokers string
	sec     securityOptions
}

// NewRootCommand returns the runnel command tree. The caller executes it;
// errors are printed by cobra as "Error: ..." and returned.
func NewRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "runnel",
		Short: "Runnel: a Kafka-compatible streaming broker in one binary",
		Long: `Runnel is a Kafka-compatible streaming broker that keeps record data in an
object store and metadata in etcd.

"runnel serve" starts a broker. The other commands are clients that work
against any Kafka-compatible cluster (Runnel or Apache Kafka).`,
		Example: `  # start a single-node broker with everything embedded
  runnel serve --data-dir ./data

  # create a topic, write to it and read it back
  runnel topic create events --partitions 3
  printf 'a\nb\n' | runnel produce events
  runnel consume events --from-beginning --max-messages 2`,
		SilenceUsage:  true,
		SilenceErrors: false,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetContext(signalContext(cmd.Context()))
			return nil
		},
	}
	brokers := os.Getenv(envBrokers)
	if brokers == "" {
		brokers = defaultBrokers
	}
	root.PersistentFlags().StringVarP(&g.brokers, "brokers", "b", brokers,
		"comma-separated seed brokers (host:port); env "+envBrokers)
	g.sec.addFlags(root.PersistentFlags())

	root.AddCommand(
		newServeCommand(),
		newTopicCommand(g),
		newProduceCommand(g),
		newConsumeCommand(g),
		newGroupCommand(g),
		newTxnCommand(g),
		newBenchCommand(g),
		newSchemaCommand(g),
		newKeysCommand(),
		newACLCommand(g),
		newUserCommand(g),
		newQuotaCommand(g),
		newClientMetricsCommand(g),
		newDLQCommand(g),
		newRetryCommand(g),
		newTableCommand(),
		newProductCommand(g),
		newAccessCommand(g),
		newShareCommand(g),
		newAsyncAPICommand(g),
	)
	wrapErrors(root, g)
	return root
}

// signalContext returns a context cancelled on the first SIGINT or SIGTERM;
// a second signal exits at once, for a shutdown that hangs.
func signalContext(parent context.Context) context.Context {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "second signal received, exiting immediately")
		os.Exit(130)
	}()
	return ctx
}

// seedBrokers splits and validates the --brokers value.
func seedBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if !strings.Contains(b, ":") {
			return nil, fmt.Errorf("broker address %q must be host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no brokers given: set --brokers or %s", envBrokers)
	}
	return out, nil
}

// newClient returns a franz-go client for the global broker list plus opts.
func (g *globalOptions) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := seedBrokers(g.brokers)
	if err != nil {
		return nil, err
	}
	sec, err := g.sec.kgoOpts()
	if err != nil {
		return nil, err
	}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("runnel-cli"),
		kgo.RetryTimeout(15 * time.Second),
		kgo.DialTimeout(5 * time.Second),
	}, sec...)
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return cl, nil
}

// newAdmin returns an admin client; close it with Close.
func (g *globalOptions) newAdmin() (*kadm.Client, error) {
	cl, err := g.newClient()
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}
