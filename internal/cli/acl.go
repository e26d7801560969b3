package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

func newACLCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Create, list and delete access control lists (Kafka ACLs)",
		Long: `Manage Kafka ACLs, in the words of kafka-acls and rpk.

An ACL allows or denies a principal (User:alice, or User:* for everyone),
connecting from a host (* or one IP), an operation on a resource: a topic,
a group, a transactional id or the cluster. A resource name is LITERAL (the
name "*" matches every resource of its type) or PREFIXED (matches every name
starting with it). DENY wins over ALLOW; READ, WRITE, DELETE and ALTER imply
DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS. The broker must run with
authorization enabled.

Operations: all, read, write, create, delete, alter, describe,
cluster_action, describe_configs, alter_configs, idempotent_write.`,
		Example: `  # let alice consume topic orders in group billing
  runnel acl create --allow-principal User:alice --operation read --topic orders
  runnel acl create --allow-principal User:alice --operation read --group billing

  runnel acl list --principal User:alice
  runnel acl delete --allow-principal User:alice --operation read --group billing`,
	}
	cmd.AddCommand(newACLCreateCommand(g), newACLListCommand(g), newACLDeleteCommand(g))
	return cmd
}

// aclFlags are the flags shared by the acl subcommands.
type aclFlags struct {
	allowPrincipals, denyPrincipals []string
	allowHosts, denyHosts           []string
	principals                      []string // list/delete: either permission
	operations                      []string
	topics, groups, txnIDs          []string
	cluster                         bool
	pattern                         string
}

func (f *aclFlags) register(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	if create {
		fl.StringArrayVar(&f.allowPrincipals, "allow-principal", nil, "principal to allow, e.g. User:alice or User:* (repeatable)")
		fl.StringArrayVar(&f.denyPrincipals, "deny-principal", nil, "principal to deny (repeatable)")
		fl.StringArrayVar(&f.allowHosts, "allow-host", nil, "host the allowed principals connect from (repeatable; default *)")
		fl.StringArrayVar(&f.denyHosts, "deny-host", nil, "host the denied principals connect from (repeatable; default *)")
		fl.StringArrayVar(&f.operations, "operation", nil, "operation (repeatable; see runnel acl --help)")
	} else {
		fl.StringArrayVar(&f.allowPrincipals, "allow-principal", nil, "only ALLOW bindings of this principal (repeatable)")
		fl.StringArrayVar(&f.denyPrincipals, "deny-principal", nil, "only DENY bindings of this principal (repeatable)")
		fl.StringArrayVar(&f.allowHosts, "allow-host", nil, "only ALLOW bindings for this host (repeatable; default any)")
		fl.StringArrayVar(&f.denyHosts, "deny-host", nil, "only DENY bindings for this host (repeatable; default any)")
		fl.StringArrayVar(&f.operations, "operation", nil, "only bindings of this operation (repeatable; default any)")
	}
	fl.StringArrayVar(&f.topics, "topic", nil, "topic name (repeatable)")
	fl.StringArrayVar(&f.groups, "group", nil, "group id (repeatable)")
	fl.StringArrayVar(&f.txnIDs, "transactional-id", nil, "transactional id (repeatable)")
	fl.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	if create {
		fl.StringVar(&f.pattern, "resource-pattern-type", "literal", "how resource names are read: literal or prefixed")
		return
	}
	fl.StringArrayVar(&f.principals, "principal", nil, "principal, allowed or denied (repeatable)")
	fl.StringVar(&f.pattern, "resource-pattern-type", "any",
		"which bindings a resource name selects: any (exactly that name, either pattern), match (every binding that applies to it), literal or prefixed")
}

func (f *aclFlags) hasResource() bool {
	return len(f.topics)+len(f.groups)+len(f.txnIDs) > 0 || f.cluster
}

// builder turns the flags into a kadm ACL builder: for create, concrete
// bindings; for list and delete, filters (what is not given matches
// anything).
func (f *aclFlags) builder(create bool) (*kadm.ACLBuilder, error) {
	pattern, err := kmsg.ParseACLResourcePatternType(f.pattern)
	if err != nil || pattern == kmsg.ACLResourcePatternTypeUnknown {
		return nil, fmt.Errorf("--resource-pattern-type %q: want literal, prefixed, match or any", f.pattern)
	}
	if create && pattern != kmsg.ACLResourcePatternTypeLiteral && pattern != kmsg.ACLResourcePatternTypePrefixed {
		return nil, fmt.Errorf("--resource-pattern-type %q: an ACL is created literal or prefixed", f.pattern)
	}
	ops := make([]kadm.ACLOperation, 0, len(f.operations))
	for _, s := range f.operations {
		op, err := kmsg.ParseACLOperation(s)
		if err != nil || op == kmsg.ACLOperationUnknown || (create && op == kmsg.ACLOperationAny) {
			return nil, fmt.Errorf("--operation %q: unknown operation (see runnel acl --help)", s)
		}
		ops = append(ops, op)
	}
	for _, p := range slices.Concat(f.allowPrincipals, f.denyPrincipals, f.principals) {
		if _, err := auth.ParsePrincipal(p); err != nil {
			return nil, fmt.Errorf("principal %q: want Type:name, e.g. User:alice", p)
		}
	}

	b := kadm.NewACLs().ResourcePatternType(pattern)
	if f.hasResource() {
		b.Topics(f.topics...).Groups(f.groups...).TransactionalIDs(f.txnIDs...).MaybeClusters(f.cluster)
		// Topics() with no names would mean every topic: name none.
		if len(f.topics) == 0 {
			b.MaybeTopics()
		}
		if len(f.groups) == 0 {
			b.MaybeGroups()
		}
		if len(f.txnIDs) == 0 {
			b.MaybeTransactionalIDs()
		}
	} else if create {
		return nil, errors.New("name a resource: --topic, --group, --transactional-id or --cluster")
	} else {
		b.AnyResource()
	}

	if create {
		if len(f.allowPrincipals)+len(f.denyPrincipals) == 0 {
			return nil, errors.New("name a principal: --allow-principal or --deny-principal")
		}
		if len(ops) == 0 {
			return nil, errors.New("name an operation: --operation")
		}
		if len(f.allowHosts) > 0 && len(f.allowPrincipals) == 0 || len(f.denyHosts) > 0 && len(f.denyPrincipals) == 0 {
			return nil, errors.New("--allow-host needs --allow-principal, --deny-host needs --deny-principal")
		}
		b.MaybeAllow(f.allowPrincipals...).MaybeAllowHosts(f.allowHosts...).
			MaybeDeny(f.denyPrincipals...).MaybeDenyHosts(f.denyHosts...).Operations(ops...)
		if len(f.allowPrincipals) > 0 && len(f.allowHosts) == 0 {
			b.MaybeAllowHosts(auth.Wildcard)
		}
		if len(f.denyPrincipals) > 0 && len(f.denyHosts) == 0 {
			b.MaybeDenyHosts(auth.Wildcard)
		}
		return b, nil
	}

	// A side (ALLOW, DENY) is selected when any of its flags is given, or
	// when none of either side's is; an unnamed principal or host within a
	// selected side matches any.
	allow := slices.Concat(f.allowPrincipals, f.principals)
	deny := slices.Concat(f.denyPrincipals, f.principals)
	allowSide := len(allow)+len(f.allowHosts) > 0
	denySide := len(deny)+len(f.denyHosts) > 0
	if !allowSide && !denySide {
		allowSide, denySide = true, true
	}
	switch {
	case !allowSide:
		b.MaybeAllow() // no ALLOW bindings
	case len(allow) > 0:
		b.MaybeAllow(allow...)
	default:
		b.Allow() // any principal
	}
	switch {
	case !denySide:
		b.MaybeDeny()
	case len(deny) > 0:
		b.MaybeDeny(deny...)
	default:
		b.Deny()
	}
	if len(f.allowHosts) > 0 {
		b.MaybeAllowHosts(f.allowHosts...)
	} else {
		b.AllowHosts() // any host
	}
	if len(f.denyHosts) > 0 {
		b.MaybeDenyHosts(f.denyHosts...)
	} else {
		b.DenyHosts()
	}
	b.Operations(ops...)
	return b, nil
}

func newACLCreateCommand(g *globalOptions) *cobra.Command {
	f := &aclFlags{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create ACLs: every principal × host × operation × resource given",
		Example: `  # alice may produce to and consume from every topic starting with orders.
  runnel acl create --allow-principal User:alice --operation write --operation read \
    --topic orders. --resource-pattern-type prefixed

  # alice may consume in group billing, from one host only
  runnel acl create --allow-principal User:alice --allow-host 10.0.0.7 --operation read --group billing

  # bob may never delete topics
  runnel acl create --deny-principal User:bob --operation delete --topic '*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.builder(true)
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.CreateACLs(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("create ACLs: %w", aclErr(err, ""))
			}
			var errs []error
			w := cmd.OutOrStdout()
			for _, r := range res {
				a := aclRow{r.Principal, r.Host, r.Type, r.Name, r.Pattern, r.Operation, r.Permission}
				if r.Err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", a, aclErr(r.Err, r.ErrMessage)))
					continue
				}
				fmt.Fprintf(w, "Created ACL %s.\n", a)
			}
			return errors.Join(errs...)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newACLListCommand(g *globalOptions) *cobra.Command {
	f := &aclFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "describe"},
		Short:   "List ACLs (all of them, or those the flags select)",
		Example: `  runnel acl list
  runnel acl list --topic orders.eu --resource-pattern-type match   # everything that applies to orders.eu
  runnel acl list --principal User:alice --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.builder(false)
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.DescribeACLs(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("list ACLs: %w", aclErr(err, ""))
			}
			var rows []aclRow
			for _, r := range res {
				if r.Err != nil {
					return fmt.Errorf("list ACLs: %w", aclErr(r.Err, r.ErrMessage))
				}
				for _, d := range r.Described {
					rows = append(rows, aclRow{d.Principal, d.Host, d.Type, d.Name, d.Pattern, d.Operation, d.Permission})
				}
			}
			return writeACLs(cmd.OutOrStdout(), rows, asJSON)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newACLDeleteCommand(g *globalOptions) *cobra.Command {
	f := &aclFlags{}
	cmd := &cobra.Command{
		Use:     "delete",
		Aliases: []string{"rm"},
		Short:   "Delete the ACLs the flags select (a resource must be named)",
		Example: `  runnel acl delete --allow-principal User:alice --operation write --topic orders. --resource-pattern-type prefixed
  runnel acl delete --group billing            # every ACL on group billing (literal or prefixed)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !f.hasResource() {
				return errors.New("name a resource: --topic, --group, --transactional-id or --cluster (as kafka-acls --remove does)")
			}
			b, err := f.builder(false)
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.DeleteACLs(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("delete ACLs: %w", aclErr(err, ""))
			}
			var errs []error
			var rows []aclRow
			for _, r := range res {
				if r.Err != nil {
					errs = append(errs, aclErr(r.Err, r.ErrMessage))
					continue
				}
				for _, d := range r.Deleted {
					rows = append(rows, aclRow{d.Principal, d.Host, d.Type, d.Name, d.Pattern, d.Operation, d.Permission})
				}
			}
			w := cmd.OutOrStdout()
			for _, a := range dedupACLs(rows) {
				fmt.Fprintf(w, "Deleted ACL %s.\n", a)
			}
			if len(rows) == 0 && len(errs) == 0 {
				fmt.Fprintln(w, "No ACL matched.")
			}
			return errors.Join(errs...)
		},
	}
	f.register(cmd, false)
	return cmd
}

// aclRow is one binding as printed.
type aclRow struct {
	Principal  string
	Host       string
	Type       kmsg.ACLResourceType
	Name       string
	Pattern    kmsg.ACLResourcePatternType
	Operation  kmsg.ACLOperation
	Permission kmsg.ACLPermissionType
}

func (a aclRow) String() string {
	return fmt.Sprintf("%s %s %s on %s %s %q from %s", a.Permission, a.Principal, a.Operation, strings.ToLower(a.Pattern.String()),
		strings.ToLower(a.Type.String()), a.Name, a.Host)
}

// dedupACLs sorts rows and drops repeats (a binding several filters
// selected).
func dedupACLs(rows []aclRow) []aclRow {
	slices.SortFunc(rows, func(a, b aclRow) int {
		return strings.Compare(fmt.Sprint(a.Type, a.Name, a.Pattern, a.Principal, a.Host, a.Operation, a.Permission),
			fmt.Sprint(b.Type, b.Name, b.Pattern, b.Principal, b.Host, b.Operation, b.Permission))
	})
	return slices.Compact(rows)
}

func writeACLs(w io.Writer, rows []aclRow, asJSON bool) error {
	rows = dedupACLs(rows)
	if asJSON {
		type out struct {
			Principal    string `json:"principal"`
			Host         string `json:"host"`
			ResourceType string `json:"resource_type"`
			ResourceName string `json:"resource_name"`
			PatternType  string `json:"pattern_type"`
			Operation    string `json:"operation"`
			Permission   string `json:"permission"`
		}
		list := make([]out, 0, len(rows))
		for _, a := range rows {
			list = append(list, out{a.Principal, a.Host, a.Type.String(), a.Name, a.Pattern.String(), a.Operation.String(), a.Permission.String()})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tHOST\tRESOURCE-TYPE\tRESOURCE-NAME\tPATTERN\tOPERATION\tPERMISSION")
	for _, a := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Principal, a.Host, a.Type, a.Name, a.Pattern, a.Operation, a.Permission)
	}
	return tw.Flush()
}

// aclErr explains the errors the ACL APIs answer.
func aclErr(err error, brokerMsg string) error {
	switch {
	case errors.Is(err, kerr.SecurityDisabled):
		return errors.New("the broker has no authorizer: enable authorization (authorization.enabled: true) to manage ACLs")
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return errors.New("not authorized: managing ACLs needs ALTER on the cluster, listing them DESCRIBE")
	}
	return kafkaErr(err, brokerMsg)
}
