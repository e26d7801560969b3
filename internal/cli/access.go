package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/access"
)

// addAccessAPIFlags adds --http and --json to a command tree.
func addAccessAPIFlags(cmd *cobra.Command, httpURL *string, asJSON *bool) {
	def := os.Getenv(envHTTP)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.PersistentFlags().StringVar(httpURL, "http", def, "a Runnel broker's HTTP URL; env "+envHTTP)
	cmd.PersistentFlags().BoolVar(asJSON, "json", false, "print JSON")
}

// newAccessCommand is `runnel access`: access requests, the grants they
// become and the audit log.
func newAccessCommand(g *globalOptions) *cobra.Command {
	var (
		httpURL string
		asJSON  bool
	)
	api := func() *apiClient { return &apiClient{base: httpURL, sec: &g.sec} }
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Request access to data products; approve, decline and revoke grants; read the audit log",
		Long: `Request READ or WRITE access to a topic (a data product), with a reason and an
optional expiry. The product's owner, or an administrator, approves or declines
it; an approval creates exactly the ACLs asked for, removed again when the
grant is revoked or expires. Every step is audited.

The commands talk to a broker's HTTP API (--http, env ` + envHTTP + `) as the
user of --sasl-user (HTTP Basic with its password) or --sasl-token-file.`,
		Example: `  export RUNNEL_SASL_USER=alice RUNNEL_SASL_PASSWORD=…
  runnel access request orders --operation READ --group fraud-app --reason "fraud dashboards" --duration 720h
  runnel access list --role approver --state PENDING
  runnel access approve 01jf… --reason "ok for 30 days"
  runnel access audit --topic orders`,
	}
	addAccessAPIFlags(cmd, &httpURL, &asJSON)
	show := func(cmd *cobra.Command, r *access.AccessRequest) error {
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), r)
		}
		return describeAccessRequest(cmd.OutOrStdout(), r)
	}

	var n access.NewRequest
	var expiresAt string
	request := &cobra.Command{
		Use:   "request TOPIC",
		Short: "Request READ or WRITE access to a topic",
		Example: `  runnel access request orders --reason "fraud dashboards" --group fraud-app --duration 720h
  runnel access request orders --operation WRITE --reason "backfill" --expires-at 2027-01-31T00:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n.Topic = args[0]
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return fmt.Errorf("--expires-at %q: want RFC 3339 (2027-01-31T00:00:00Z): %w", expiresAt, err)
				}
				n.ExpiresAt = &t
			}
			var r access.AccessRequest
			if err := api().call(cmd.Context(), http.MethodPost, "/api/v1/access-requests", nil, n, &r); err != nil {
				return err
			}
			return show(cmd, &r)
		},
	}
	request.Flags().StringVar(&n.Operation, "operation", "READ", "READ or WRITE")
	request.Flags().StringVar(&n.Group, "group", "", "the consumer group to read with (READ only)")
	request.Flags().StringVar(&n.Reason, "reason", "", "why you need access (required)")
	request.Flags().StringVar(&n.Duration, "duration", "", "how long the grant lasts once approved, e.g. 720h")
	request.Flags().StringVar(&expiresAt, "expires-at", "", "when the grant ends (RFC 3339)")

	var f access.RequestFilter
	var limit, offset int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the requests you made or may decide",
		Example: "  runnel access list --role approver --state PENDING\n  runnel access list --role mine --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"state": f.State, "topic": f.Topic, "role": f.Role} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", fmt.Sprint(limit))
			q.Set("offset", fmt.Sprint(offset))
			var l struct {
				Items []access.AccessRequest `json:"items"`
				Total int                    `json:"total"`
			}
			if err := api().call(cmd.Context(), http.MethodGet, "/api/v1/access-requests", q, nil, &l); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTOPIC\tOPERATION\tREQUESTER\tSTATE\tEXPIRES\tREASON")
			for _, r := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Topic, r.Operation, r.Requester, r.State, timeText(r.ExpiresAt, r.Duration), oneLine(r.Reason))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(l.Items) < l.Total {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d shown (--limit, --offset)\n", len(l.Items), l.Total)
			}
			return nil
		},
	}
	list.Flags().StringVar(&f.State, "state", "", "PENDING, APPROVED, DECLINED, CANCELLED, EXPIRED or REVOKED")
	list.Flags().StringVar(&f.Topic, "topic", "", "only requests for this topic")
	list.Flags().StringVar(&f.Role, "role", "", "mine (requested by you) or approver (yours to decide)")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (1..1000)")
	list.Flags().IntVar(&offset, "offset", 0, "skip this many")

	showCmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one request, its decision and its ACLs",
		Example: "  runnel access show 01jf3z0q7m9n8c5v4b2x1k0h6d",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r access.AccessRequest
			if err := api().call(cmd.Context(), http.MethodGet, "/api/v1/access-requests/"+url.PathEscape(args[0]), nil, nil, &r); err != nil {
				return err
			}
			return show(cmd, &r)
		},
	}

	step := func(action, short string, needReason bool) *cobra.Command {
		var reason string
		c := &cobra.Command{
			Use:     action + " ID",
			Short:   short,
			Example: "  runnel access " + action + " 01jf3z0q7m9n8c5v4b2x1k0h6d" + map[bool]string{true: ` --reason "…"`}[needReason],
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if needReason && strings.TrimSpace(reason) == "" {
					return fmt.Errorf("%s needs --reason", action)
				}
				var r access.AccessRequest
				body := map[string]string{"reason": reason}
				if err := api().call(cmd.Context(), http.MethodPost, "/api/v1/access-requests/"+url.PathEscape(args[0])+"/"+action, nil, body, &r); err != nil {
					return err
				}
				return show(cmd, &r)
			},
		}
		if action != "cancel" {
			c.Flags().StringVar(&reason, "reason", "", "the reason, shown to the requester")
		}
		return c
	}

	var af access.AuditFilter
	var auditLimit int
	audit := &cobra.Command{
		Use:     "audit",
		Short:   "Show the audit log, newest first (administrators see all; others what concerns them)",
		Example: "  runnel access audit --topic orders\n  runnel access audit --action access.approve --limit 10",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"topic": af.Topic, "actor": af.Actor, "action": af.Action, "resource": af.Resource} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", fmt.Sprint(auditLimit))
			var l struct {
				Items []governance.Event `json:"items"`
			}
			if err := api().call(cmd.Context(), http.MethodGet, "/api/v1/audit", q, nil, &l); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTOR\tHOST\tACTION\tRESOURCE\tREASON")
			for _, e := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Host, e.Action, e.Resource, oneLine(e.Reason))
			}
			return tw.Flush()
		},
	}
	audit.Flags().StringVar(&af.Topic, "topic", "", "only events about this topic")
	audit.Flags().StringVar(&af.Actor, "actor", "", "only events by this principal (User:alice)")
	audit.Flags().StringVar(&af.Action, "action", "", "only this action (access.approve, share.create, …)")
	audit.Flags().StringVar(&af.Resource, "resource", "", "only events about this resource (access-request:<id>, share:<id>)")
	audit.Flags().IntVar(&auditLimit, "limit", 50, "at most this many (1..1000)")

	cmd.AddCommand(request, list, showCmd,
		step("approve", "Approve a pending request (its product's owner or an administrator)", false),
		step("decline", "Decline a pending request, with a reason", true),
		step("cancel", "Withdraw your own pending request", false),
		step("revoke", "End an approved grant and remove its ACLs, with a reason", true),
		audit,
	)
	return cmd
}

// timeText shows an optional time, or a duration that starts later.
func timeText(t *time.Time, dur string) string {
	switch {
	case t != nil:
		return t.UTC().Format(time.RFC3339)
	case dur != "":
		return dur + " after approval"
	}
	return "-"
}

// oneLine shortens text to one table cell.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func describeAccessRequest(w io.Writer, r *access.AccessRequest) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	decided := ""
	if r.DecidedAt != nil {
		decided = r.DecidedAt.UTC().Format(time.RFC3339)
	}
	for _, kv := range [][2]string{
		{"ID", r.ID},
		{"Topic", r.Topic},
		{"Operation", r.Operation},
		{"Group", r.Group},
		{"Requester", r.Requester + " from " + r.RequesterHost},
		{"Reason", r.Reason},
		{"State", r.State},
		{"Created", r.CreatedAt.UTC().Format(time.RFC3339)},
		{"Expires", timeText(r.ExpiresAt, r.Duration)},
		{"Decided by", r.DecidedBy},
		{"Decided", decided},
		{"Decision reason", r.DecisionReason},
		{"Ended by", r.EndedBy},
	} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	for _, a := range r.ACLs {
		pre := ""
		if a.Preexisting {
			pre = " (existed before; kept when the grant ends)"
		}
		fmt.Fprintf(tw, "ACL:\t%s %s %s %s %s %s on %s%s\n", a.Permission, a.Principal, a.Operation, a.ResourceType, a.PatternType, a.ResourceName, a.Host, pre)
	}
	return tw.Flush()
}
