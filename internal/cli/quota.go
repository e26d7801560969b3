package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newQuotaCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Set, describe and delete client quotas",
		Long: `Client quotas limit what a user, a client id, or a user's client id may
use, as kafka-configs --entity-type users/clients does: producer_byte_rate
and consumer_byte_rate (bytes per second), request_percentage (percent of
one request thread) and controller_mutation_rate (partitions created or
deleted per second). An entity part is a name or the default
(--user-default, --client-id-default), which applies to every user or
client id without a quota of its own. A client is held to the most specific
quota that matches it: user and client id, then user, then the defaults,
then client id alone.`,
		Example: `  runnel quota set --user alice --producer-byte-rate 1048576
  runnel quota set --user alice --client-id etl --consumer-byte-rate 2097152
  runnel quota set --user-default --request-percentage 50
  runnel quota describe
  runnel quota describe --user alice --json
  runnel quota delete --user alice --key producer_byte_rate
  runnel quota delete --user-default`,
	}
	cmd.AddCommand(newQuotaSetCommand(g), newQuotaDescribeCommand(g), newQuotaDeleteCommand(g))
	return cmd
}

// quotaEntityFlags are the flags that name an entity.
type quotaEntityFlags struct {
	user, clientID               string
	userDefault, clientIDDefault bool
	anyUser, anyClientID         bool // describe only
}

func (e *quotaEntityFlags) register(f *pflag.FlagSet, describe bool) {
	f.StringVar(&e.user, "user", "", "the user (principal name, e.g. alice for User:alice)")
	f.BoolVar(&e.userDefault, "user-default", false, "the default user (<default>)")
	f.StringVar(&e.clientID, "client-id", "", "the client id")
	f.BoolVar(&e.clientIDDefault, "client-id-default", false, "the default client id (<default>)")
	if describe {
		f.BoolVar(&e.anyUser, "any-user", false, "entities with any user part, named or default")
		f.BoolVar(&e.anyClientID, "any-client-id", false, "entities with any client-id part, named or default")
	}
}

// part checks one entity part's flags; set reports whether the part is
// given, name is nil for the default.
func quotaPart(kind, name string, def, anyPart bool) (set bool, n *string, anyOf bool, err error) {
	given := 0
	for _, b := range []bool{name != "", def, anyPart} {
		if b {
			given++
		}
	}
	if given > 1 {
		return false, nil, false, fmt.Errorf("give only one of --%s, --%s-default and --any-%s", kind, kind, kind)
	}
	switch {
	case name != "":
		return true, &name, false, nil
	case def:
		return true, nil, false, nil
	case anyPart:
		return true, nil, true, nil
	}
	return false, nil, false, nil
}

// entity is the entity the flags name, for set and delete.
func (e *quotaEntityFlags) entity() (kadm.ClientQuotaEntity, error) {
	var out kadm.ClientQuotaEntity
	okU, nU, _, err := quotaPart("user", e.user, e.userDefault, false)
	if err != nil {
		return nil, err
	}
	okC, nC, _, err := quotaPart("client-id", e.clientID, e.clientIDDefault, false)
	if err != nil {
		return nil, err
	}
	if okU {
		out = append(out, kadm.ClientQuotaEntityComponent{Type: "user", Name: nU})
	}
	if okC {
		out = append(out, kadm.ClientQuotaEntityComponent{Type: "client-id", Name: nC})
	}
	if len(out) == 0 {
		return nil, errors.New("name the entity: --user NAME or --user-default, and/or --client-id ID or --client-id-default")
	}
	return out, nil
}

// filter is the describe filter the flags name; no flag describes every
// quota.
func (e *quotaEntityFlags) filter() ([]kadm.DescribeClientQuotaComponent, error) {
	var out []kadm.DescribeClientQuotaComponent
	for _, p := range []struct {
		typ, flag  string
		name       string
		def, anyOf bool
	}{
		{"user", "user", e.user, e.userDefault, e.anyUser},
		{"client-id", "client-id", e.clientID, e.clientIDDefault, e.anyClientID},
	} {
		ok, n, anyOf, err := quotaPart(p.flag, p.name, p.def, p.anyOf)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		c := kadm.DescribeClientQuotaComponent{Type: p.typ, MatchName: n, MatchType: kmsg.QuotasMatchTypeExact}
		switch {
		case anyOf:
			c.MatchType = kmsg.QuotasMatchTypeAny
		case n == nil:
			c.MatchType = kmsg.QuotasMatchTypeDefault
		}
		out = append(out, c)
	}
	return out, nil
}

// quotaValueFlags are the typed quota flags of quota set.
var quotaValueFlags = []struct{ flag, key, usage string }{
	{"producer-byte-rate", "producer_byte_rate", "produce bytes per second"},
	{"consumer-byte-rate", "consumer_byte_rate", "fetch bytes per second"},
	{"request-percentage", "request_percentage", "request handling time, percent of one thread"},
	{"controller-mutation-rate", "controller_mutation_rate", "partitions created or deleted per second"},
}

// quotaSetOps turns the typed flags that were given and --add key=value
// pairs into alter operations, sorted by key.
func quotaSetOps(typed map[string]string, adds []string) ([]kadm.AlterClientQuotaOp, error) {
	kv, err := parseKVs("add", adds)
	if err != nil {
		return nil, err
	}
	for k, v := range typed {
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("%s is given both as a flag and with --add", k)
		}
		kv[k] = v
	}
	if len(kv) == 0 {
		return nil, errors.New("give at least one quota, e.g. --producer-byte-rate 1048576 or --add consumer_byte_rate=1048576")
	}
	var ops []kadm.AlterClientQuotaOp
	for k, v := range kv {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want a number", k, v)
		}
		ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Value: f})
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Key < ops[j].Key })
	return ops, nil
}

func newQuotaSetCommand(g *globalOptions) *cobra.Command {
	var (
		ent          quotaEntityFlags
		adds         []string
		validateOnly bool
	)
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Set quotas of a user, a client id, or both",
		Example: `  runnel quota set --user alice --producer-byte-rate 1048576
  runnel quota set --client-id-default --consumer-byte-rate 10485760
  runnel quota set --user alice --client-id etl --add request_percentage=25 --validate-only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entity, err := ent.entity()
			if err != nil {
				return err
			}
			typed := map[string]string{}
			for _, q := range quotaValueFlags {
				if f := cmd.Flags().Lookup(q.flag); f.Changed {
					typed[q.key] = f.Value.String()
				}
			}
			ops, err := quotaSetOps(typed, adds)
			if err != nil {
				return err
			}
			if err := alterQuota(cmd, g, entity, ops, validateOnly); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if validateOnly {
				fmt.Fprintf(out, "Quotas of %s are valid; nothing was changed (--validate-only).\n", quotaEntityString(entity))
				return nil
			}
			fmt.Fprintf(out, "Set quotas of %s:", quotaEntityString(entity))
			for _, op := range ops {
				fmt.Fprintf(out, " %s=%s", op.Key, formatQuota(op.Value))
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	f := cmd.Flags()
	ent.register(f, false)
	for _, q := range quotaValueFlags {
		f.Float64(q.flag, 0, q.usage)
	}
	f.StringArrayVar(&adds, "add", nil, "a quota key=value (repeatable), as kafka-configs --add-config")
	f.BoolVar(&validateOnly, "validate-only", false, "ask the broker to validate the quotas without setting them")
	return cmd
}

func newQuotaDeleteCommand(g *globalOptions) *cobra.Command {
	var (
		ent  quotaEntityFlags
		keys []string
	)
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete quotas of a user, a client id, or both (all of them without --key)",
		Example: `  runnel quota delete --user alice --key producer_byte_rate
  runnel quota delete --user alice --client-id etl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entity, err := ent.entity()
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				adm, err := g.newAdmin()
				if err != nil {
					return err
				}
				filter := make([]kadm.DescribeClientQuotaComponent, 0, len(entity))
				for _, c := range entity {
					mt := kmsg.QuotasMatchTypeExact
					if c.Name == nil {
						mt = kmsg.QuotasMatchTypeDefault
					}
					filter = append(filter, kadm.DescribeClientQuotaComponent{Type: c.Type, MatchName: c.Name, MatchType: mt})
				}
				qs, err := adm.DescribeClientQuotas(cmd.Context(), true, filter)
				adm.Close()
				if err != nil {
					return fmt.Errorf("describe quotas: %w", quotaErr(err, ""))
				}
				for _, q := range qs {
					for _, v := range q.Values {
						keys = append(keys, v.Key)
					}
				}
				if len(keys) == 0 {
					return fmt.Errorf("%s has no quotas", quotaEntityString(entity))
				}
			}
			var ops []kadm.AlterClientQuotaOp
			for _, k := range keys {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
			}
			if err := alterQuota(cmd, g, entity, ops, false); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted quotas of %s: %s\n", quotaEntityString(entity), strings.Join(keys, ", "))
			return nil
		},
	}
	ent.register(cmd.Flags(), false)
	cmd.Flags().StringArrayVar(&keys, "key", nil, "a quota key to delete (repeatable), e.g. producer_byte_rate")
	return cmd
}

func alterQuota(cmd *cobra.Command, g *globalOptions, entity kadm.ClientQuotaEntity, ops []kadm.AlterClientQuotaOp, validateOnly bool) error {
	adm, err := g.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	alter := adm.AlterClientQuotas
	if validateOnly {
		alter = adm.ValidateAlterClientQuotas
	}
	res, err := alter(cmd.Context(), []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
	if err != nil {
		return fmt.Errorf("alter quotas of %s: %w", quotaEntityString(entity), quotaErr(err, ""))
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("quotas of %s: %w", quotaEntityString(entity), quotaErr(r.Err, r.ErrMessage))
		}
	}
	return nil
}

// quotaErr explains the errors quota commands meet.
func quotaErr(err error, brokerMsg string) error {
	switch {
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return errors.New("not authorized: quotas need the cluster ALTER_CONFIGS (set) or DESCRIBE_CONFIGS (describe) permission")
	case errors.Is(err, kerr.UnsupportedVersion):
		return fmt.Errorf("the broker does not serve client quotas: %w", err)
	}
	return kafkaErr(err, brokerMsg)
}

func newQuotaDescribeCommand(g *globalOptions) *cobra.Command {
	var (
		ent    quotaEntityFlags
		strict bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "describe",
		Aliases: []string{"list"},
		Short:   "Describe quotas (every quota without entity flags)",
		Long: `Describe shows the quotas of the entities the flags select: --user NAME
matches that user, --user-default the default user, --any-user any user part
(and the same for client ids). Without --strict an entity may also have a
part the flags do not name (--user alice shows alice's client-id quotas too).`,
		Example: `  runnel quota describe
  runnel quota describe --user alice --strict
  runnel quota describe --any-client-id --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := ent.filter()
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			qs, err := adm.DescribeClientQuotas(cmd.Context(), strict, filter)
			if err != nil {
				return fmt.Errorf("describe quotas: %w", quotaErr(err, ""))
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), quotasJSON(qs))
			}
			return writeQuotas(cmd.OutOrStdout(), qs)
		},
	}
	f := cmd.Flags()
	ent.register(f, true)
	f.BoolVar(&strict, "strict", false, "only entities with exactly the parts named")
	f.BoolVar(&asJSON, "json", false, "print the quotas as JSON")
	return cmd
}

// quotaEntityString is an entity in kafka-configs' notation,
// "user=alice, client-id=<default>".
func quotaEntityString(e kadm.ClientQuotaEntity) string {
	return strings.TrimSuffix(strings.TrimPrefix(e.String(), "{"), "}")
}

// formatQuota prints 1048576 as 1048576 and 25.5 as 25.5.
func formatQuota(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func quotaPartName(e kadm.ClientQuotaEntity, typ string) string {
	for _, c := range e {
		if c.Type == typ {
			if c.Name == nil {
				return "<default>"
			}
			return *c.Name
		}
	}
	return "-"
}

// writeQuotas prints one line per entity and quota, sorted.
func writeQuotas(w io.Writer, qs kadm.DescribedClientQuotas) error {
	if len(qs) == 0 {
		_, err := fmt.Fprintln(w, "No quotas.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tCLIENT-ID\tQUOTA\tVALUE")
	for _, q := range sortedQuotas(qs) {
		for _, v := range q.Values {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", quotaPartName(q.Entity, "user"), quotaPartName(q.Entity, "client-id"), v.Key, formatQuota(v.Value))
		}
	}
	return tw.Flush()
}

func sortedQuotas(qs kadm.DescribedClientQuotas) kadm.DescribedClientQuotas {
	out := append(kadm.DescribedClientQuotas(nil), qs...)
	for i := range out {
		vs := append(kadm.ClientQuotaValues(nil), out[i].Values...)
		sort.Slice(vs, func(a, b int) bool { return vs[a].Key < vs[b].Key })
		out[i].Values = vs
	}
	key := func(e kadm.ClientQuotaEntity) [2]string { // an absent part sorts first
		return [2]string{quotaPartName(e, "user"), quotaPartName(e, "client-id")}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := key(out[i].Entity), key(out[j].Entity)
		return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
	})
	return out
}

// quotaJSON is one entity of quota describe --json; a default part is
// "<default>", an absent one is left out.
type quotaJSON struct {
	User     *string            `json:"user,omitempty"`
	ClientID *string            `json:"client_id,omitempty"`
	Quotas   map[string]float64 `json:"quotas"`
}

func quotasJSON(qs kadm.DescribedClientQuotas) []quotaJSON {
	out := make([]quotaJSON, 0, len(qs))
	for _, q := range sortedQuotas(qs) {
		j := quotaJSON{Quotas: map[string]float64{}}
		for _, c := range q.Entity {
			n := "<default>"
			if c.Name != nil {
				n = *c.Name
			}
			switch c.Type {
			case "user":
				j.User = &n
			case "client-id":
				j.ClientID = &n
			}
		}
		for _, v := range q.Values {
			j.Quotas[v.Key] = v.Value
		}
		out = append(out, j)
	}
	return out
}
