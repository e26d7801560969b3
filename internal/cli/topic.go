package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTopicCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
		Example: `  runnel topic create orders --partitions 6 --config retention.ms=86400000
  runnel topic list
  runnel topic describe orders
  runnel topic alter orders --config retention.ms=3600000 --partitions 12
  runnel topic delete orders`,
	}
	cmd.AddCommand(
		newTopicCreateCommand(g),
		newTopicListCommand(g),
		newTopicDescribeCommand(g),
		newTopicAlterCommand(g),
		newTopicDeleteCommand(g),
	)
	return cmd
}

func newTopicCreateCommand(g *globalOptions) *cobra.Command {
	var (
		partitions   int32
		replication  int16
		configs      []string
		validateOnly bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Example: `  runnel topic create orders
  runnel topic create orders --partitions 6 --config cleanup.policy=compact
  runnel topic create orders --partitions 6 --validate-only`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if partitions == 0 || partitions < -1 {
				return fmt.Errorf("--partitions %d: want a positive number (or -1 for the broker default)", partitions)
			}
			if replication == 0 || replication < -1 {
				return fmt.Errorf("--replication-factor %d: want a positive number (or -1 for the broker default)", replication)
			}
			cfg, err := parseKVs("config", configs)
			if err != nil {
				return err
			}
			var ptrs map[string]*string
			if len(cfg) > 0 {
				ptrs = make(map[string]*string, len(cfg))
				for k, v := range cfg {
					ptrs[k] = kadm.StringPtr(v)
				}
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			create := adm.CreateTopics
			if validateOnly {
				create = adm.ValidateCreateTopics
			}
			resps, err := create(cmd.Context(), partitions, replication, ptrs, name)
			if err != nil {
				return fmt.Errorf("create topic %q: %w", name, err)
			}
			r, ok := resps[name]
			if !ok {
				return fmt.Errorf("create topic %q: the broker did not answer for this topic", name)
			}
			if r.Err != nil {
				return topicErr(name, r.Err, r.ErrMessage)
			}
			out := cmd.OutOrStdout()
			if validateOnly {
				fmt.Fprintf(out, "Topic %q is valid (partitions: %d); nothing was created (--validate-only).\n", name, r.NumPartitions)
				return nil
			}
			fmt.Fprintf(out, "Created topic %q with %d partitions (id %s).\n", name, r.NumPartitions, topicID(r.ID))
			return nil
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", 1, "number of partitions (-1 = broker default)")
	f.Int16VarP(&replication, "replication-factor", "r", -1, "replication factor (-1 = broker default)")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	f.BoolVar(&validateOnly, "validate-only", false, "ask the broker to validate the request without creating the topic")
	return cmd
}

func newTopicListCommand(g *globalOptions) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics with their partition count and id",
		Example: `  runnel topic list
  runnel topic list --internal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			topics, err := adm.ListTopicsWithInternal(cmd.Context())
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			if !internal {
				topics.FilterInternal()
			}
			return writeTopicList(cmd.OutOrStdout(), topics, internal)
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics")
	return cmd
}

func writeTopicList(w io.Writer, topics kadm.TopicDetails, internal bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if internal {
		fmt.Fprintln(tw, "NAME\tPARTITIONS\tINTERNAL\tID")
	} else {
		fmt.Fprintln(tw, "NAME\tPARTITIONS\tID")
	}
	for _, t := range topics.Sorted() {
		if t.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t%s\n", t.Topic, kafkaErr(t.Err, ""))
			continue
		}
		if internal {
			fmt.Fprintf(tw, "%s\t%d\t%t\t%s\n", t.Topic, len(t.Partitions), t.IsInternal, topicID(t.ID))
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Topic, len(t.Partitions), topicID(t.ID))
		}
	}
	return tw.Flush()
}

func newTopicDescribeCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "describe NAME",
		Short:   "Show a topic's partitions (leader, replicas, log start and end offsets) and non-default configs",
		Example: `  runnel topic describe orders`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			topics, err := adm.ListTopicsWithInternal(ctx, name)
			if err != nil {
				return fmt.Errorf("describe topic %q: %w", name, err)
			}
			td, ok := topics[name]
			if !ok {
				return fmt.Errorf("topic %q does not exist", name)
			}
			if td.Err != nil {
				return topicErr(name, td.Err, "")
			}
			starts, err := adm.ListStartOffsets(ctx, name)
			if err != nil {
				return fmt.Errorf("list start offsets of %q: %w", name, err)
			}
			ends, err := adm.ListEndOffsets(ctx, name)
			if err != nil {
				return fmt.Errorf("list end offsets of %q: %w", name, err)
			}
			// Configs are secondary: if they cannot be read, still show the
			// partitions and say why the configs are missing.
			var rc kadm.ResourceConfig
			rcs, err := adm.DescribeTopicConfigs(ctx, name)
			if err == nil {
				rc, err = rcs.On(name, nil)
			}
			if err == nil && rc.Err != nil {
				err = kafkaErr(rc.Err, rc.ErrMessage)
			}
			if err != nil {
				rc = kadm.ResourceConfig{Name: name, Err: err}
			}
			return writeTopicDescription(cmd.OutOrStdout(), td, starts, ends, rc)
		},
	}
	return cmd
}

func writeTopicDescription(w io.Writer, td kadm.TopicDetail, starts, ends kadm.ListedOffsets, rc kadm.ResourceConfig) error {
	fmt.Fprintf(w, "Topic:       %s\nID:          %s\nPartitions:  %d\nReplication: %d\nInternal:    %t\n\n",
		td.Topic, topicID(td.ID), len(td.Partitions), td.Partitions.NumReplicas(), td.IsInternal)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START\tLOG-END\tERROR")
	for _, p := range td.Partitions.Sorted() {
		start, end := offsetCell(starts, td.Topic, p.Partition), offsetCell(ends, td.Topic, p.Partition)
		errCell := ""
		if p.Err != nil {
			errCell = kafkaErr(p.Err, "").Error()
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch,
			int32List(p.Replicas), int32List(p.ISR), start, end, errCell)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rc.Err != nil {
		fmt.Fprintf(w, "\nConfigs: unavailable (%v)\n", rc.Err)
		return nil
	}
	var nonDefault []kadm.Config
	for _, c := range rc.Configs {
		if c.Source != kmsg.ConfigSourceDefaultConfig {
			nonDefault = append(nonDefault, c)
		}
	}
	fmt.Fprintln(w)
	if len(nonDefault) == 0 {
		fmt.Fprintln(w, "Configs: all defaults")
		return nil
	}
	fmt.Fprintln(w, "Configs (non-default):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range nonDefault {
		v := c.MaybeValue()
		if c.Sensitive {
			v = "(sensitive)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Key, v, strings.ToLower(c.Source.String()))
	}
	return tw.Flush()
}

// topicID renders an id the way Kafka's tools do: URL-safe base64 without
// padding; "-" when the broker sent none.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// offsetCell renders a listed offset or its error for a table.
func offsetCell(l kadm.ListedOffsets, topic string, p int32) string {
	o, ok := l.Lookup(topic, p)
	switch {
	case !ok:
		return "-"
	case o.Err != nil:
		return "error"
	}
	return fmt.Sprint(o.Offset)
}

func int32List(xs []int32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func newTopicAlterCommand(g *globalOptions) *cobra.Command {
	var (
		sets       []string
		deletes    []string
		partitions int
	)
	cmd := &cobra.Command{
		Use:   "alter NAME",
		Short: "Change a topic's configs or add partitions",
		Long: `Change a topic's configs (incrementally: configs not named are left as they
are) or raise its partition count. Partitions can only be added, never removed.`,
		Example: `  runnel topic alter orders --config retention.ms=3600000
  runnel topic alter orders --delete-config retention.ms
  runnel topic alter orders --partitions 12`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			plan, err := planTopicAlter(sets, deletes)
			if err != nil {
				return err
			}
			if len(plan) == 0 && partitions == 0 {
				return errors.New("nothing to change: give --config, --delete-config or --partitions")
			}
			if partitions < 0 {
				return fmt.Errorf("--partitions %d: want the new total partition count", partitions)
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			out := cmd.OutOrStdout()
			if partitions > 0 {
				topics, err := adm.ListTopics(ctx, name)
				if err != nil {
					return fmt.Errorf("alter topic %q: %w", name, err)
				}
				td, ok := topics[name]
				if !ok {
					return fmt.Errorf("topic %q does not exist", name)
				}
				if td.Err != nil {
					return topicErr(name, td.Err, "")
				}
				cur := len(td.Partitions)
				if partitions <= cur {
					return fmt.Errorf("topic %q already has %d partitions; --partitions must be larger (partitions can only be added)", name, cur)
				}
				rs, err := adm.UpdatePartitions(ctx, partitions, name)
				if err != nil {
					return fmt.Errorf("add partitions to %q: %w", name, err)
				}
				r, err := rs.On(name, nil)
				if err != nil {
					return topicErr(name, err, "")
				}
				if r.Err != nil {
					return topicErr(name, r.Err, r.ErrMessage)
				}
				fmt.Fprintf(out, "Topic %q now has %d partitions (was %d).\n", name, partitions, cur)
			}
			if len(plan) > 0 {
				rs, err := adm.AlterTopicConfigs(ctx, plan, name)
				if err != nil {
					return fmt.Errorf("alter configs of %q: %w", name, err)
				}
				r, err := rs.On(name, nil)
				if err != nil {
					return topicErr(name, err, "")
				}
				if r.Err != nil {
					return topicErr(name, r.Err, r.ErrMessage)
				}
				for _, c := range plan {
					if c.Op == kadm.DeleteConfig {
						fmt.Fprintf(out, "Reset %s to its default.\n", c.Name)
					} else {
						fmt.Fprintf(out, "Set %s=%s.\n", c.Name, *c.Value)
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&sets, "config", "c", nil, "set a topic config key=value (repeatable)")
	f.StringArrayVar(&deletes, "delete-config", nil, "reset a topic config to its default (repeatable)")
	f.IntVarP(&partitions, "partitions", "p", 0, "raise the partition count to this total")
	return cmd
}

// planTopicAlter turns --config and --delete-config into incremental
// alterations, rejecting a key that is both set and deleted.
func planTopicAlter(sets, deletes []string) ([]kadm.AlterConfig, error) {
	kv, err := parseKVs("config", sets)
	if err != nil {
		return nil, err
	}
	var plan []kadm.AlterConfig
	for _, k := range sortedKeys(kv) {
		plan = append(plan, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(kv[k])})
	}
	seen := make(map[string]bool)
	for _, k := range deletes {
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, errors.New("--delete-config: empty config name")
		}
		if _, ok := kv[k]; ok {
			return nil, fmt.Errorf("config %q is both set (--config) and deleted (--delete-config)", k)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		plan = append(plan, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return plan, nil
}

func newTopicDeleteCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete one or more topics and all their records",
		Example: `  runnel topic delete orders
  runnel topic delete orders payments`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			rs, err := adm.DeleteTopics(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			return reportDeleted(cmd.OutOrStdout(), "topic", args, func(name string) (bool, error) {
				r, ok := rs[name]
				return ok, topicErr(name, r.Err, r.ErrMessage)
			})
		},
	}
	return cmd
}

// exactArgs is cobra.ExactArgs with a message naming the missing argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s) (%s), got %d; see %q", cmd.CommandPath(), n, names, len(args), cmd.CommandPath()+" --help")
		}
		return nil
	}
}

// reportDeleted prints a line for each name whose deletion succeeded and
// joins the errors of the others. result says whether the broker answered
// for a name and with which error.
func reportDeleted(w io.Writer, kind string, names []string, result func(name string) (answered bool, err error)) error {
	var errs []error
	for _, name := range names {
		answered, err := result(name)
		switch {
		case !answered:
			errs = append(errs, fmt.Errorf("%s %q: the broker did not answer for this %s", kind, name, kind))
		case err != nil:
			errs = append(errs, err)
		default:
			fmt.Fprintf(w, "Deleted %s %q.\n", kind, name)
		}
	}
	return errors.Join(errs...)
}
