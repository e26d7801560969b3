package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runnel-dev/runnel/internal/tableflow"
)

// envHTTP names the environment variable holding a broker's HTTP URL.
const envHTTP = "RUNNEL_HTTP"

// newTableCommand is `runnel table`: the Iceberg tables of topics, read
// from a broker's HTTP listener (GET /tables, GET /tables/{ns}/{name}).
func newTableCommand() *cobra.Command {
	var (
		httpURL string
		asJSON  bool
	)
	def := os.Getenv(envHTTP)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Show the Iceberg tables of topics (table.enabled=true)",
		Long: `Show the Iceberg tables Runnel materialises from topics: their topic, mode,
writer broker, state, lag behind the topic (records and seconds), last commit,
errors, files and bytes. Read from a broker's HTTP listener (--http, env ` + envHTTP + `).
A table is named NAMESPACE.NAME (namespace "default" when omitted).`,
		Example: `  runnel table list
  runnel table status orders --http http://127.0.0.1:8080
  runnel table describe default.orders --json`,
	}
	cmd.PersistentFlags().StringVar(&httpURL, "http", def, "a Runnel broker's HTTP URL; env "+envHTTP)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(
		&cobra.Command{
			Use:     "list",
			Short:   "List the tables",
			Example: "  runnel table list --json",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				ts, err := fetchTables(cmd.Context(), httpURL)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return writeJSON(out, ts)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TABLE\tTOPIC\tMODE\tSTATE\tWRITER")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%s\t%s\n", t.Namespace, t.Name, t.Topic, t.Mode, t.State, writerText(t.Writer))
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:     "describe TABLE",
			Short:   "Show everything about one table",
			Example: "  runnel table describe default.orders",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				t, err := fetchTable(cmd.Context(), httpURL, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), t)
				}
				return describeTable(cmd.OutOrStdout(), t)
			},
		},
		&cobra.Command{
			Use:     "status [TABLE]",
			Short:   "Show the tables' lag, last commit, errors, files and bytes",
			Example: "  runnel table status\n  runnel table status analytics.clicks",
			Args:    cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var ts []tableflow.TableStatus
				if len(args) == 1 {
					t, err := fetchTable(cmd.Context(), httpURL, args[0])
					if err != nil {
						return err
					}
					ts = []tableflow.TableStatus{t}
				} else {
					var err error
					if ts, err = fetchTables(cmd.Context(), httpURL); err != nil {
						return err
					}
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return writeJSON(out, ts)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TABLE\tSTATE\tLAG_RECORDS\tLAG_SECONDS\tLAST_COMMIT\tERRORS\tFILES\tBYTES")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%.1f\t%s\t%d\t%d\t%d\n", t.Namespace, t.Name, t.State, t.LagRecords, t.LagSeconds,
						commitText(t.LastCommitMs), t.Errors, t.Files, t.Bytes)
				}
				return tw.Flush()
			},
		},
	)
	return cmd
}

func writerText(id int32) string {
	if id < 0 {
		return "-"
	}
	return fmt.Sprint(id)
}

func commitText(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func describeTable(w io.Writer, t tableflow.TableStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"Table", t.Namespace + "." + t.Name},
		{"Topic", t.Topic},
		{"Mode", t.Mode},
		{"State", t.State},
		{"Reason", t.Reason},
		{"Writer", writerText(t.Writer)},
		{"Lag records", fmt.Sprint(t.LagRecords)},
		{"Lag seconds", fmt.Sprintf("%.1f", t.LagSeconds)},
		{"Last commit", commitText(t.LastCommitMs)},
		{"Last snapshot", fmt.Sprint(t.LastSnapshotID)},
		{"Commits", fmt.Sprint(t.Commits)},
		{"Records", fmt.Sprint(t.Records)},
		{"Errors", fmt.Sprint(t.Errors)},
		{"Last error", t.LastError},
		{"Files", fmt.Sprint(t.Files)},
		{"Bytes", fmt.Sprint(t.Bytes)},
		{"Source", t.Source},
	} {
		if kv[1] == "" {
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

// splitTableName reads NAMESPACE.NAME; a bare NAME is in "default".
func splitTableName(s string) (string, string, error) {
	ns, name, ok := strings.Cut(s, ".")
	if !ok {
		ns, name = "default", s
	}
	if ns == "" || name == "" || strings.Contains(name, ".") {
		return "", "", fmt.Errorf("table %q: want NAMESPACE.NAME", s)
	}
	return ns, name, nil
}

func fetchTables(ctx context.Context, base string) ([]tableflow.TableStatus, error) {
	var ts []tableflow.TableStatus
	if err := getTableJSON(ctx, strings.TrimSuffix(base, "/")+"/tables", &ts); err != nil {
		return nil, err
	}
	if ts == nil {
		ts = []tableflow.TableStatus{}
	}
	return ts, nil
}

func fetchTable(ctx context.Context, base, table string) (tableflow.TableStatus, error) {
	var t tableflow.TableStatus
	ns, name, err := splitTableName(table)
	if err != nil {
		return t, err
	}
	u := strings.TrimSuffix(base, "/") + "/tables/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
	return t, getTableJSON(ctx, u, &t)
}

func getTableJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("tables %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("tables %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("tables %s: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("tables %s: %w", u, err)
	}
	return nil
}
