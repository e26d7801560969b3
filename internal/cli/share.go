package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runnel-dev/runnel/internal/governance/access"
)

// newShareCommand is `runnel share`: share a topic with an outside party
// through a SCRAM user of its own.
func newShareCommand(g *globalOptions) *cobra.Command {
	var (
		httpURL string
		asJSON  bool
	)
	api := func() *apiClient { return &apiClient{base: httpURL, sec: &g.sec} }
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Share a topic with an outside party: scoped credentials, quota, expiry, revocation",
		Long: `Share a topic (a data product you own) with an outside party. Runnel mints a
SCRAM user that may only read the topic (and consume with groups named after
the user), optionally with a consumer byte-rate quota and an expiry, and shows
its password and the connection details once. Revoking the share refuses the
recipient on every broker within a second.

The commands talk to a broker's HTTP API (--http, env ` + envHTTP + `) as the
user of --sasl-user (HTTP Basic with its password) or --sasl-token-file.`,
		Example: `  runnel share create orders --recipient "ACME Corp" --duration 720h --consumer-byte-rate 1048576
  runnel share list --topic orders
  runnel share revoke 01jf…`,
	}
	addAccessAPIFlags(cmd, &httpURL, &asJSON)
	show := func(cmd *cobra.Command, sh *access.Share) error {
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), sh)
		}
		return describeShare(cmd.OutOrStdout(), sh)
	}

	var n access.NewShare
	var expiresAt string
	var rate int64
	create := &cobra.Command{
		Use:     "create TOPIC",
		Short:   "Share a topic; prints the password once",
		Example: `  runnel share create orders --recipient "ACME Corp" --duration 720h --consumer-byte-rate 1048576`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n.Topic = args[0]
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return fmt.Errorf("--expires-at %q: want RFC 3339 (2027-01-31T00:00:00Z): %w", expiresAt, err)
				}
				n.ExpiresAt = &t
			}
			if cmd.Flags().Changed("consumer-byte-rate") {
				n.Quota = &access.ShareQuota{ConsumerByteRate: rate}
			}
			var cs access.CreatedShare
			if err := api().call(cmd.Context(), http.MethodPost, "/api/v1/shares", nil, n, &cs); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, cs)
			}
			if err := describeShare(out, cs.Share); err != nil {
				return err
			}
			c := cs.Connection
			fmt.Fprintf(out, "\nGive the recipient (the password is not shown again):\n")
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, kv := range [][2]string{
				{"bootstrap.servers", c.BootstrapServers},
				{"security.protocol", c.SecurityProtocol},
				{"sasl.mechanism", c.SASLMechanism},
				{"sasl.username", cs.Credentials.Username},
				{"sasl.password", cs.Credentials.Password},
				{"group.id", cs.Credentials.Username + "-<anything>"},
				{"schema.registry.url", c.SchemaRegistryURL},
			} {
				if kv[1] != "" {
					fmt.Fprintf(tw, "  %s=%s\n", kv[0], kv[1])
				}
			}
			return tw.Flush()
		},
	}
	create.Flags().StringVar(&n.Recipient, "recipient", "", "who the topic is shared with (required)")
	create.Flags().StringVar(&n.Description, "description", "", "what the share is for")
	create.Flags().StringVar(&n.Duration, "duration", "", "how long the share lasts, e.g. 720h")
	create.Flags().StringVar(&expiresAt, "expires-at", "", "when the share ends (RFC 3339)")
	create.Flags().Int64Var(&rate, "consumer-byte-rate", 0, "the recipient's fetch quota in bytes per second")

	var topic string
	var limit, offset int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the shares you may see",
		Example: "  runnel share list --topic orders",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {fmt.Sprint(limit)}, "offset": {fmt.Sprint(offset)}}
			if topic != "" {
				q.Set("topic", topic)
			}
			var l struct {
				Items []access.Share `json:"items"`
				Total int            `json:"total"`
			}
			if err := api().call(cmd.Context(), http.MethodGet, "/api/v1/shares", q, nil, &l); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTOPIC\tRECIPIENT\tUSER\tSTATE\tEXPIRES\tCREATED_BY")
			for _, sh := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sh.ID, sh.Topic, oneLine(sh.Recipient), sh.Username, sh.State, timeText(sh.ExpiresAt, ""), sh.CreatedBy)
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
	list.Flags().StringVar(&topic, "topic", "", "only shares of this topic")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (1..1000)")
	list.Flags().IntVar(&offset, "offset", 0, "skip this many")

	showCmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one share",
		Example: "  runnel share show 01jf3z0q7m9n8c5v4b2x1k0h6d",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sh access.Share
			if err := api().call(cmd.Context(), http.MethodGet, "/api/v1/shares/"+url.PathEscape(args[0]), nil, nil, &sh); err != nil {
				return err
			}
			return show(cmd, &sh)
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a share: its user, ACLs and quota are removed at once",
		Example: "  runnel share revoke 01jf3z0q7m9n8c5v4b2x1k0h6d",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sh access.Share
			if err := api().call(cmd.Context(), http.MethodDelete, "/api/v1/shares/"+url.PathEscape(args[0]), nil, nil, &sh); err != nil {
				return err
			}
			return show(cmd, &sh)
		},
	}
	cmd.AddCommand(create, list, showCmd, revoke)
	return cmd
}

func describeShare(w io.Writer, sh *access.Share) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	revoked := ""
	if sh.RevokedAt != nil {
		revoked = sh.RevokedAt.UTC().Format(time.RFC3339) + " by " + sh.RevokedBy
	}
	quota := ""
	if sh.Quota != nil {
		quota = fmt.Sprintf("%d bytes/s consumed", sh.Quota.ConsumerByteRate)
	}
	for _, kv := range [][2]string{
		{"ID", sh.ID},
		{"Topic", sh.Topic},
		{"Recipient", sh.Recipient},
		{"Description", strings.TrimSpace(sh.Description)},
		{"User", sh.Username},
		{"State", sh.State},
		{"Created", sh.CreatedAt.UTC().Format(time.RFC3339) + " by " + sh.CreatedBy},
		{"Expires", timeText(sh.ExpiresAt, "")},
		{"Ended", revoked},
		{"Quota", quota},
	} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	return tw.Flush()
}
