package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newClientMetricsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client-metrics",
		Short: "Set, list and delete KIP-714 client metrics subscriptions",
		Long: `A client metrics subscription (a CLIENT_METRICS config resource, as
kafka-client-metrics.sh manages) asks the clients it matches to push the
metrics whose names start with the given prefixes ("*" for all) every
interval. Match selectors are regular expressions that must match a
client's whole attribute: client_id, client_instance_id,
client_software_name, client_software_version, client_source_address,
client_source_port. A client pushes the union of the subscriptions it
matches at the shortest of their intervals; brokers re-export what it
pushes on /metrics as runnel_client_* series.`,
		Example: `  runnel client-metrics set producers --metrics org.apache.kafka.producer. --interval 30s --match 'client_id=etl-.*'
  runnel client-metrics set everything --metrics '*' --interval 1m
  runnel client-metrics list
  runnel client-metrics delete producers`,
	}
	cmd.AddCommand(newClientMetricsSetCommand(g), newClientMetricsListCommand(g), newClientMetricsDeleteCommand(g))
	return cmd
}

func newClientMetricsSetCommand(g *globalOptions) *cobra.Command {
	var (
		metrics  []string
		matches  []string
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create a subscription or change the configs given",
		Example: `  runnel client-metrics set producers --metrics org.apache.kafka.producer. --interval 30s
  runnel client-metrics set etl --metrics '*' --match 'client_id=etl-.*' --match client_software_name=kgo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := map[string]string{}
			if cmd.Flags().Changed("metrics") {
				set["metrics"] = strings.Join(metrics, ",")
			}
			if cmd.Flags().Changed("interval") {
				if interval%time.Millisecond != 0 {
					return fmt.Errorf("--interval %v: want whole milliseconds", interval)
				}
				set["interval.ms"] = strconv.FormatInt(interval.Milliseconds(), 10)
			}
			if cmd.Flags().Changed("match") {
				set["match"] = strings.Join(matches, ",")
			}
			if len(set) == 0 {
				return errors.New("give at least one of --metrics, --interval and --match")
			}
			if err := alterClientMetrics(cmd, g, args[0], set, kmsg.IncrementalAlterConfigOpSet); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Set client metrics subscription %s:%s\n", args[0], formatConfigs(set))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&metrics, "metrics", nil, `metric name prefixes, comma-separated ("*" for all)`)
	f.DurationVar(&interval, "interval", 0, "push interval (100ms to 1h)")
	f.StringArrayVar(&matches, "match", nil, "a selector=regex the client must match (repeatable)")
	return cmd
}

func newClientMetricsDeleteCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a subscription",
		Example: `  runnel client-metrics delete producers`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			subs, err := describeClientMetricsSubs(cmd, cl, args)
			cl.Close()
			if err != nil {
				return err
			}
			if len(subs[args[0]]) == 0 {
				return fmt.Errorf("no client metrics subscription %q", args[0])
			}
			if err := alterClientMetrics(cmd, g, args[0], subs[args[0]], kmsg.IncrementalAlterConfigOpDelete); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted client metrics subscription %s\n", args[0])
			return nil
		},
	}
}

func newClientMetricsListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"describe"},
		Short:   "List the subscriptions and their configs",
		Example: `  runnel client-metrics list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			lresp, err := kmsg.NewPtrListConfigResourcesRequest().RequestWith(cmd.Context(), cl)
			if err == nil {
				err = kerr.ErrorForCode(lresp.ErrorCode)
			}
			if err != nil {
				return clientMetricsErr(fmt.Errorf("list client metrics subscriptions: %w", err))
			}
			var names []string
			for _, r := range lresp.ConfigResources {
				names = append(names, r.Name)
			}
			sort.Strings(names)
			subs, err := describeClientMetricsSubs(cmd, cl, names)
			if err != nil {
				return err
			}
			printClientMetrics(cmd.OutOrStdout(), names, subs)
			return nil
		},
	}
}

// printClientMetrics writes one row per subscription.
func printClientMetrics(w io.Writer, names []string, subs map[string]map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINTERVAL\tMETRICS\tMATCH")
	for _, n := range names {
		c := subs[n]
		iv := "5m0s (default)"
		if ms, err := strconv.ParseInt(c["interval.ms"], 10, 64); err == nil {
			iv = (time.Duration(ms) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, iv, orDash(c["metrics"]), orDash(c["match"]))
	}
	tw.Flush()
}

// formatConfigs spells configs as " k=v" in name order.
func formatConfigs(c map[string]string) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, c[k])
	}
	return b.String()
}

// describeClientMetricsSubs returns the configs of the named subscriptions.
func describeClientMetricsSubs(cmd *cobra.Command, cl *kgo.Client, names []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, n := range names {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, n
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(cmd.Context(), cl)
	if err != nil {
		return nil, clientMetricsErr(fmt.Errorf("describe client metrics subscriptions: %w", err))
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return nil, clientMetricsErr(fmt.Errorf("describe client metrics subscription %s: %w", r.ResourceName, kafkaErr(err, brokerMsg(r.ErrorMessage))))
		}
		c := map[string]string{}
		for _, e := range r.Configs {
			if e.Value != nil {
				c[e.Name] = *e.Value
			}
		}
		out[r.ResourceName] = c
	}
	return out, nil
}

// alterClientMetrics applies op to the named configs of a subscription.
func alterClientMetrics(cmd *cobra.Command, g *globalOptions, name string, configs map[string]string, op kmsg.IncrementalAlterConfigOp) error {
	cl, err := g.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, name
	for k, v := range configs {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = k, op
		if op == kmsg.IncrementalAlterConfigOpSet {
			c.Value = kmsg.StringPtr(v)
		}
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(cmd.Context(), cl)
	if err != nil {
		return clientMetricsErr(fmt.Errorf("alter client metrics subscription %s: %w", name, err))
	}
	res := resp.Resources[0]
	if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
		return clientMetricsErr(fmt.Errorf("client metrics subscription %s: %w", name, kafkaErr(err, brokerMsg(res.ErrorMessage))))
	}
	return nil
}

// clientMetricsErr explains the errors client-metrics commands meet.
func clientMetricsErr(err error) error {
	switch {
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return errors.New("not authorized: client metrics subscriptions need the cluster ALTER_CONFIGS (set, delete) or DESCRIBE_CONFIGS (list) permission")
	case errors.Is(err, kerr.UnsupportedVersion):
		return fmt.Errorf("the broker does not serve client metrics: %w", err)
	}
	return err
}

// brokerMsg is a response's error message, "" when null.
func brokerMsg(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
