package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runnel-dev/runnel/internal/governance/asyncapi"
)

// newAsyncAPICommand is `runnel asyncapi`: export the cluster's data
// products as an AsyncAPI 3 document, or import one, through a broker's
// HTTP API (/api/v1/asyncapi).
func newAsyncAPICommand(g *globalOptions) *cobra.Command {
	var httpURL string
	def := os.Getenv(envHTTP)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd := &cobra.Command{
		Use:   "asyncapi",
		Short: "Export the cluster's data products as an AsyncAPI 3 document, or import one",
		Long: `Export describes topics as an AsyncAPI 3.0 document: a server per Kafka
listener, a channel per topic with its Kafka binding and configuration, a
message per topic with its schema from the registry, the producers and
consumer groups observed on it, and its owner and tags from the catalog.

Import reads such a document and plans, per channel, the topic to create, the
schema to register under <topic>-value (and <topic>-key) and the catalog
metadata to set. It is a dry run unless --apply is given; importing needs an
administrator (ALTER on the cluster).

Both talk to a broker's HTTP listener (--http, env ` + envHTTP + `) with the
client's credentials: HTTP Basic with --sasl-user and its password, or the
bearer token of --sasl-token-file with --sasl-mechanism OAUTHBEARER.`,
		Example: `  runnel asyncapi export -o cluster.yaml
  runnel asyncapi export --topics orders,payments --format json
  runnel asyncapi import cluster.yaml
  runnel asyncapi import cluster.yaml --apply`,
	}
	cmd.PersistentFlags().StringVar(&httpURL, "http", def, "a Runnel broker's HTTP URL; env "+envHTTP)

	var (
		topics []string
		format string
		output string
	)
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the AsyncAPI document of the cluster or of some topics",
		Example: `  runnel asyncapi export -o cluster.yaml
  runnel asyncapi export --topics orders,payments --format json --http https://broker-1:8080 --tls-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "yaml" && format != "json" {
				return fmt.Errorf("--format %q: want yaml or json", format)
			}
			q := url.Values{"format": {format}}
			if len(topics) > 0 {
				q.Set("topics", strings.Join(topics, ","))
			}
			status, body, err := apiCall(cmd.Context(), &apiClient{base: httpURL, sec: &g.sec}, http.MethodGet, "/api/v1/asyncapi?"+q.Encode(), "", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return apiError("export", status, body)
			}
			if output == "" || output == "-" {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			return os.WriteFile(output, body, 0o644)
		},
	}
	export.Flags().StringSliceVar(&topics, "topics", nil, "the topics to describe (comma-separated; default: every topic)")
	export.Flags().StringVar(&format, "format", "yaml", "yaml or json")
	export.Flags().StringVarP(&output, "output", "o", "", "write the document to this file instead of standard output")

	var (
		apply  bool
		asJSON bool
	)
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Plan (or with --apply, carry out) the topics, subjects and products of a document",
		Long: `Import plans the document FILE (YAML or JSON, "-" for standard input) against
the cluster and prints the plan: each topic to create, that exists, or that
conflicts (and how); each subject to register, that exists, or that is
incompatible; each product to create, update or leave unchanged. Nothing
changes without --apply, and an apply is refused while the plan has a
conflict or an incompatible schema.`,
		Example: `  runnel asyncapi import cluster.yaml
  RUNNEL_SASL_PASSWORD=… runnel asyncapi import cluster.yaml --apply --sasl-mechanism SCRAM-SHA-512 --sasl-user admin
  cat cluster.json | runnel asyncapi import - --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readDocumentFile(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/api/v1/asyncapi/import?dryRun=%t", !apply)
			status, body, err := apiCall(cmd.Context(), &apiClient{base: httpURL, sec: &g.sec}, http.MethodPost, path, "application/yaml", doc)
			if err != nil {
				return err
			}
			var res asyncapi.Result
			if json.Unmarshal(body, &res) != nil || res.Topics == nil {
				return apiError("import", status, body)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, res); err != nil {
					return err
				}
			} else if err := printImport(out, res); err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("import: %s", res.Message)
			}
			return nil
		},
	}
	imp.Flags().BoolVar(&apply, "apply", false, "carry the plan out (default: a dry run)")
	imp.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")

	cmd.AddCommand(export, imp)
	return cmd
}

// readDocumentFile reads an AsyncAPI document from a file or "-", at
// most the size the broker accepts.
func readDocumentFile(stdin io.Reader, name string) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, asyncapi.MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > asyncapi.MaxImportBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes, the most a broker imports", name, asyncapi.MaxImportBytes)
	}
	return b, nil
}

// apiCall sends a raw body (nil: none) to a broker's HTTP API, with the
// client's TLS settings and credentials (apiClient), and returns the
// status and body of any answer: an import's refusal carries its plan.
func apiCall(ctx context.Context, api *apiClient, method, path, contentType string, body []byte) (int, []byte, error) {
	hc, err := api.client()
	if err != nil {
		return 0, nil, err
	}
	u := strings.TrimSuffix(api.base, "/") + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if err := api.authorize(req); err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return resp.StatusCode, b, nil
}

// apiError renders an API error answer: its message, else the body.
func apiError(what string, status int, body []byte) error {
	var e struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return fmt.Errorf("%s: %s (HTTP %d)", what, e.Message, status)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 512 {
		text = text[:512] + "…"
	}
	return errors.New(what + ": HTTP " + fmt.Sprint(status) + " " + text)
}

// printImport prints an import's plan or result as tables.
func printImport(w io.Writer, r asyncapi.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if r.DryRun {
		fmt.Fprintln(tw, "Dry run: nothing was changed (apply with --apply).")
		fmt.Fprintln(tw)
	}
	done := func(applied bool) string {
		if r.DryRun {
			return ""
		}
		if applied {
			return "done"
		}
		return "-"
	}
	fmt.Fprintln(tw, "TOPIC\tACTION\tPARTITIONS\tCONFIGS\tAPPLIED\tREASON")
	for _, t := range r.Topics {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", t.Name, t.Action, t.Partitions, configText(t.Configs), done(t.Applied), t.Reason)
	}
	fmt.Fprintln(tw, "\nSUBJECT\tTYPE\tACTION\tAPPLIED\tREASON")
	for _, s := range r.Subjects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Subject, s.Type, s.Action, done(s.Applied), s.Reason)
	}
	fmt.Fprintln(tw, "\nPRODUCT\tACTION\tAPPLIED\tREASON")
	for _, p := range r.Products {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Topic, p.Action, done(p.Applied), p.Reason)
	}
	return tw.Flush()
}

func configText(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}
