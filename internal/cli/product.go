package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runnel-dev/runnel/internal/governance/catalog"
)

// newProductCommand is `runnel product`: the stream catalog, through a
// broker's HTTP API (/api/v1/products, /teams, /tags).
func newProductCommand(g *globalOptions) *cobra.Command {
	api := &apiClient{sec: &g.sec}
	var asJSON bool
	def := os.Getenv(envHTTP)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd := &cobra.Command{
		Use:   "product",
		Short: "Find, describe and edit data products (the stream catalog)",
		Long: `Every topic is a data product: an owner (a user or a team), a description, a
domain, tags, a lifecycle state, typed business metadata, links and field tags,
besides its schemas, fields and data contract from the registry.

Talks to a broker's HTTP API (--http, env ` + envHTTP + `). With --sasl-mechanism
PLAIN or SCRAM-*, --sasl-user and the password (--sasl-password-env or
--sasl-password-stdin) authenticate with HTTP Basic; with OAUTHBEARER, the token
of --sasl-token-file is sent as a bearer token. --tls-* flags apply to HTTPS.`,
		Example: `  runnel product search email --tag PII
  runnel product show orders
  runnel product set orders --owner Team:payments --description "Orders as placed" --tag tier-1
  runnel product sample orders --limit 5
  runnel product team set payments --member User:bob --member User:carol
  runnel product tag set PII --description "Personal data" --attr retention:enum:required:30d|1y --mask`,
	}
	cmd.PersistentFlags().StringVar(&api.base, "http", def, "a Runnel broker's HTTP URL; env "+envHTTP)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	out := func(c *cobra.Command, v any, text func(w io.Writer) error) error {
		if asJSON {
			return writeJSON(c.OutOrStdout(), v)
		}
		return text(c.OutOrStdout())
	}

	var f struct {
		tags                     []string
		owner, domain, lifecycle string
		limit, offset            int
	}
	listRun := func(c *cobra.Command, q string) error {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		for _, t := range f.tags {
			v.Add("tag", t)
		}
		for k, s := range map[string]string{"owner": f.owner, "domain": f.domain, "lifecycle": f.lifecycle} {
			if s != "" {
				v.Set(k, s)
			}
		}
		v.Set("limit", strconv.Itoa(f.limit))
		v.Set("offset", strconv.Itoa(f.offset))
		var res catalog.SearchResult
		if err := api.do(c.Context(), http.MethodGet, "/api/v1/products?"+v.Encode(), nil, &res); err != nil {
			return err
		}
		return out(c, res, func(w io.Writer) error { return printProducts(w, res) })
	}
	listFlags := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringArrayVar(&f.tags, "tag", nil, "only products with this tag (repeatable: all of them)")
		c.Flags().StringVar(&f.owner, "owner", "", "only products of this owner (User:x or Team:x)")
		c.Flags().StringVar(&f.domain, "domain", "", "only products of this domain")
		c.Flags().StringVar(&f.lifecycle, "lifecycle", "", "only products in this state: draft, active, deprecated, retired")
		c.Flags().IntVar(&f.limit, "limit", 50, "at most this many products (1..1000)")
		c.Flags().IntVar(&f.offset, "offset", 0, "skip this many products")
		return c
	}

	cmd.AddCommand(
		listFlags(&cobra.Command{
			Use:     "list",
			Short:   "List the products",
			Example: "  runnel product list --owner Team:payments",
			Args:    cobra.NoArgs,
			RunE:    func(c *cobra.Command, _ []string) error { return listRun(c, "") },
		}),
		listFlags(&cobra.Command{
			Use:   "search QUERY",
			Short: "Search products by name, description, tags, owner, domain, field names and business metadata",
			Long: `Search the products: every word of QUERY must match (the last one as a prefix),
in the topic name, tags, owner, domain, schema field names, description or
business metadata values; names rank first, then tags and fields.`,
			Example: "  runnel product search customer email",
			Args:    cobra.MinimumNArgs(1),
			RunE:    func(c *cobra.Command, args []string) error { return listRun(c, strings.Join(args, " ")) },
		}),
		&cobra.Command{
			Use:     "show TOPIC",
			Short:   "Show a product: metadata, schema fields with tags, contract",
			Example: "  runnel product show orders --json",
			Args:    cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				var p catalog.Product
				if err := api.do(c.Context(), http.MethodGet, "/api/v1/products/"+url.PathEscape(args[0]), nil, &p); err != nil {
					return err
				}
				return out(c, p, func(w io.Writer) error { return printProduct(w, p) })
			},
		},
		newProductSetCommand(api, out),
		&cobra.Command{
			Use:     "delete TOPIC",
			Short:   "Delete a product's metadata (the topic stays)",
			Example: "  runnel product delete orders",
			Args:    cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				if err := api.do(c.Context(), http.MethodDelete, "/api/v1/products/"+url.PathEscape(args[0]), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "deleted the metadata of %s\n", args[0])
				return nil
			},
		},
		newProductSampleCommand(api, out),
		newProductDiffCommand(api, out),
		newProductTeamCommand(api, out),
		newProductTagCommand(api, out),
	)
	return cmd
}

type printer func(c *cobra.Command, v any, text func(w io.Writer) error) error

func newProductSetCommand(api *apiClient, out printer) *cobra.Command {
	var (
		owner, description, domain, lifecycle string
		tags, addTags, removeTags             []string
		meta, links, fieldTags                []string
		clearMeta, clearLinks                 bool
	)
	c := &cobra.Command{
		Use:   "set TOPIC",
		Short: "Create or edit a product's metadata",
		Long: `Create or edit a product's metadata: the flags given change it, the rest stays.
The write is conditional on the version read, so a concurrent edit fails
(409) instead of being overwritten. --meta KEY=VALUE reads VALUE as JSON when it
is a number, true/false or a quoted string, else as text; --meta KEY= removes KEY.`,
		Example: `  runnel product set orders --owner Team:payments --domain sales --lifecycle active
  runnel product set orders --add-tag tier-1 --meta tier=1 --meta costCenter='"4711"'
  runnel product set orders --field-tag customer.email=PII --link Runbook=https://wiki/orders`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := "/api/v1/products/" + url.PathEscape(args[0])
			var p catalog.Product
			if err := api.do(c.Context(), http.MethodGet, path, nil, &p); err != nil {
				return err
			}
			u := catalog.ProductUpdate{Owner: p.Owner, Description: p.Description, Domain: p.Domain, Lifecycle: p.Lifecycle,
				BusinessMetadata: p.BusinessMetadata, Links: p.Links, FieldTags: p.FieldTags, Version: p.Version}
			// The product's own tags, not those its fields bring.
			u.Tags = p.OwnTags
			fl := c.Flags()
			if fl.Changed("owner") {
				u.Owner = owner
			}
			if fl.Changed("description") {
				u.Description = description
			}
			if fl.Changed("domain") {
				u.Domain = domain
			}
			if fl.Changed("lifecycle") {
				u.Lifecycle = lifecycle
			}
			if fl.Changed("tag") {
				u.Tags = tags
			}
			u.Tags = append(u.Tags, addTags...)
			u.Tags = slices.DeleteFunc(u.Tags, func(t string) bool { return slices.Contains(removeTags, t) })
			if clearMeta || u.BusinessMetadata == nil {
				u.BusinessMetadata = map[string]any{}
			}
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--meta %q: want KEY=VALUE", kv)
				}
				if v == "" {
					delete(u.BusinessMetadata, k)
					continue
				}
				u.BusinessMetadata[k] = metaValue(v)
			}
			if clearLinks {
				u.Links = nil
			}
			for _, l := range links {
				title, target, ok := strings.Cut(l, "=")
				if !ok || title == "" {
					return fmt.Errorf("--link %q: want TITLE=URL", l)
				}
				u.Links = append(u.Links, catalog.Link{Title: title, URL: target})
			}
			if u.FieldTags == nil {
				u.FieldTags = map[string][]string{}
			}
			for _, ft := range fieldTags {
				field, tag, ok := strings.Cut(ft, "=")
				if !ok || field == "" {
					return fmt.Errorf("--field-tag %q: want FIELD=TAG (FIELD= clears the field's tags)", ft)
				}
				if tag == "" {
					delete(u.FieldTags, field)
					continue
				}
				u.FieldTags[field] = append(u.FieldTags[field], tag)
			}
			var res catalog.Product
			if err := api.do(c.Context(), http.MethodPut, path, u, &res); err != nil {
				return err
			}
			return out(c, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: version %d\n", res.Topic, res.Version)
				return err
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&owner, "owner", "", "the owner: User:NAME or Team:NAME (empty: none)")
	fl.StringVar(&description, "description", "", "what the product holds")
	fl.StringVar(&domain, "domain", "", "the business domain")
	fl.StringVar(&lifecycle, "lifecycle", "", "draft, active, deprecated or retired")
	fl.StringArrayVar(&tags, "tag", nil, "the product's tags, replacing them (repeatable)")
	fl.StringArrayVar(&addTags, "add-tag", nil, "add a tag (repeatable)")
	fl.StringArrayVar(&removeTags, "remove-tag", nil, "remove a tag (repeatable)")
	fl.StringArrayVar(&meta, "meta", nil, "set business metadata KEY=VALUE (repeatable; KEY= removes)")
	fl.BoolVar(&clearMeta, "clear-meta", false, "remove all business metadata first")
	fl.StringArrayVar(&links, "link", nil, "add a link TITLE=URL (repeatable)")
	fl.BoolVar(&clearLinks, "clear-links", false, "remove all links first")
	fl.StringArrayVar(&fieldTags, "field-tag", nil, "tag a schema field FIELD=TAG (repeatable; FIELD= clears)")
	return c
}

// metaValue reads a business metadata value: JSON numbers, booleans and
// quoted strings as such, anything else as text.
func metaValue(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		switch v.(type) {
		case float64, bool, string:
			return v
		}
	}
	return s
}

func newProductSampleCommand(api *apiClient, out printer) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "sample TOPIC",
		Short: "Show the newest records, decoded through the registry, sensitive fields masked",
		Long: `Show the newest records of a topic across its partitions, decoded through the
schema registry (Avro, JSON Schema, Protobuf; raw bytes as base64 and text
without a schema), with fields tagged PII (or with a masking tag) shown as
"****". Needs READ on the topic.`,
		Example: "  runnel product sample orders --limit 5",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var s catalog.Sample
			path := "/api/v1/products/" + url.PathEscape(args[0]) + "/sample?limit=" + strconv.Itoa(limit)
			if err := api.do(c.Context(), http.MethodGet, path, nil, &s); err != nil {
				return err
			}
			return out(c, s, func(w io.Writer) error {
				for _, r := range s.Items {
					k, _ := json.Marshal(r.Key)
					v, _ := json.Marshal(r.Value)
					fmt.Fprintf(w, "%d/%d %s key=%s value=%s", r.Partition, r.Offset, r.Timestamp, k, v)
					if len(r.Masked) > 0 {
						fmt.Fprintf(w, " masked=%s", strings.Join(r.Masked, ","))
					}
					fmt.Fprintln(w)
				}
				return nil
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 10, "at most this many records (1..100)")
	return c
}

func newProductDiffCommand(api *apiClient, out printer) *cobra.Command {
	var from, to int
	c := &cobra.Command{
		Use:     "diff TOPIC --from V --to V",
		Short:   "Compare two versions of a product's value schema: fields added, removed, changed",
		Example: "  runnel product diff orders --from 1 --to 3",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var d catalog.SchemaDiff
			path := fmt.Sprintf("/api/v1/products/%s/schema/diff?from=%d&to=%d", url.PathEscape(args[0]), from, to)
			if err := api.do(c.Context(), http.MethodGet, path, nil, &d); err != nil {
				return err
			}
			return out(c, d, func(w io.Writer) error {
				for _, f := range d.Added {
					fmt.Fprintf(w, "+ %s %s\n", f.Path, f.Type)
				}
				for _, f := range d.Removed {
					fmt.Fprintf(w, "- %s %s\n", f.Path, f.Type)
				}
				for _, ch := range d.Changed {
					fmt.Fprintf(w, "~ %s %s [%s] -> %s [%s]\n", ch.Path, ch.From.Type, strings.Join(ch.From.Tags, ","), ch.To.Type, strings.Join(ch.To.Tags, ","))
				}
				return nil
			})
		},
	}
	c.Flags().IntVar(&from, "from", 1, "the older version")
	c.Flags().IntVar(&to, "to", 2, "the newer version")
	return c
}

func newProductTeamCommand(api *apiClient, out printer) *cobra.Command {
	c := &cobra.Command{Use: "team", Short: "List, show, set and delete teams (owners of products)",
		Example: "  runnel product team list\n  runnel product team set payments --member User:bob"}
	var members []string
	var description string
	set := &cobra.Command{
		Use:     "set NAME",
		Short:   "Create or replace a team (an administrator creates; members edit)",
		Example: "  runnel product team set payments --member User:bob --member User:carol --description Payments",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if members == nil {
				members = []string{}
			}
			var t catalog.Team
			if err := api.do(c.Context(), http.MethodPut, "/api/v1/teams/"+url.PathEscape(args[0]),
				catalog.TeamUpdate{Members: members, Description: description}, &t); err != nil {
				return err
			}
			return out(c, t, func(w io.Writer) error { return printTeams(w, []catalog.Team{t}) })
		},
	}
	set.Flags().StringArrayVar(&members, "member", nil, "a member, User:NAME (repeatable)")
	set.Flags().StringVar(&description, "description", "", "what the team does")
	c.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List the teams", Example: "  runnel product team list --json", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				var l struct {
					Items []catalog.Team `json:"items"`
				}
				if err := api.do(c.Context(), http.MethodGet, "/api/v1/teams?limit=1000", nil, &l); err != nil {
					return err
				}
				return out(c, l.Items, func(w io.Writer) error { return printTeams(w, l.Items) })
			},
		},
		&cobra.Command{
			Use: "show NAME", Short: "Show a team", Example: "  runnel product team show payments", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				var t catalog.Team
				if err := api.do(c.Context(), http.MethodGet, "/api/v1/teams/"+url.PathEscape(args[0]), nil, &t); err != nil {
					return err
				}
				return out(c, t, func(w io.Writer) error { return printTeams(w, []catalog.Team{t}) })
			},
		},
		set,
		&cobra.Command{
			Use: "delete NAME", Short: "Delete a team (an administrator)", Example: "  runnel product team delete payments", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				if err := api.do(c.Context(), http.MethodDelete, "/api/v1/teams/"+url.PathEscape(args[0]), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "deleted team %s\n", args[0])
				return nil
			},
		},
	)
	return c
}

func newProductTagCommand(api *apiClient, out printer) *cobra.Command {
	c := &cobra.Command{Use: "tag", Short: "List, show, set and delete tag definitions (business metadata attributes, masking)",
		Example: "  runnel product tag list\n  runnel product tag set PII --mask"}
	var (
		attrs       []string
		description string
		mask        bool
	)
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Define a tag (an administrator): its business metadata attributes and whether it masks",
		Long: `Define a tag. --attr NAME:TYPE[:required][:V1|V2|...] declares a business
metadata attribute that products with the tag may carry (must, when required),
TYPE one of string, int, bool, enum, date, url (an enum lists its values).
--mask=true masks the fields with this tag in samples (PII masks unless
--mask=false is set on its definition).`,
		Example: "  runnel product tag set GDPR --attr retention:enum:required:30d|1y --attr dpo:url",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			u := catalog.TagUpdate{Description: description, Attributes: []catalog.Attribute{}}
			if c.Flags().Changed("mask") {
				u.Mask = &mask
			}
			for _, s := range attrs {
				a, err := parseAttribute(s)
				if err != nil {
					return err
				}
				u.Attributes = append(u.Attributes, a)
			}
			var t catalog.TagDef
			if err := api.do(c.Context(), http.MethodPut, "/api/v1/tags/"+url.PathEscape(args[0]), u, &t); err != nil {
				return err
			}
			return out(c, t, func(w io.Writer) error { return printTagDefs(w, []catalog.TagDef{t}) })
		},
	}
	set.Flags().StringArrayVar(&attrs, "attr", nil, "an attribute NAME:TYPE[:required][:V1|V2] (repeatable)")
	set.Flags().StringVar(&description, "description", "", "what the tag means")
	set.Flags().BoolVar(&mask, "mask", false, "mask fields with this tag in samples")
	c.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List the tag definitions", Example: "  runnel product tag list", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				var l struct {
					Items []catalog.TagDef `json:"items"`
				}
				if err := api.do(c.Context(), http.MethodGet, "/api/v1/tags?limit=1000", nil, &l); err != nil {
					return err
				}
				return out(c, l.Items, func(w io.Writer) error { return printTagDefs(w, l.Items) })
			},
		},
		&cobra.Command{
			Use: "show NAME", Short: "Show a tag definition", Example: "  runnel product tag show PII --json", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				var t catalog.TagDef
				if err := api.do(c.Context(), http.MethodGet, "/api/v1/tags/"+url.PathEscape(args[0]), nil, &t); err != nil {
					return err
				}
				return out(c, t, func(w io.Writer) error { return printTagDefs(w, []catalog.TagDef{t}) })
			},
		},
		set,
		&cobra.Command{
			Use: "delete NAME", Short: "Delete a tag definition (an administrator)", Example: "  runnel product tag delete GDPR", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				if err := api.do(c.Context(), http.MethodDelete, "/api/v1/tags/"+url.PathEscape(args[0]), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "deleted tag definition %s\n", args[0])
				return nil
			},
		},
	)
	return c
}

// parseAttribute reads NAME:TYPE[:required][:V1|V2|...].
func parseAttribute(s string) (catalog.Attribute, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return catalog.Attribute{}, fmt.Errorf("--attr %q: want NAME:TYPE[:required][:V1|V2]", s)
	}
	a := catalog.Attribute{Name: parts[0], Type: parts[1]}
	for _, p := range parts[2:] {
		switch {
		case p == "required":
			a.Required = true
		case p != "":
			a.Values = strings.Split(p, "|")
		}
	}
	return a, nil
}

func printProducts(w io.Writer, res catalog.SearchResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tOWNER\tDOMAIN\tLIFECYCLE\tTAGS\tMATCHED FIELDS")
	for _, p := range res.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Topic, dash(p.Owner), dash(p.Domain), p.Lifecycle,
			dash(strings.Join(p.Tags, ",")), dash(strings.Join(p.MatchedFields, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d products\n", len(res.Items), res.Total)
	return err
}

func printProduct(w io.Writer, p catalog.Product) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	state := "exists"
	if !p.Exists {
		state = "topic deleted"
	}
	for _, kv := range [][2]string{
		{"Topic", p.Topic + " (" + state + ", " + strconv.Itoa(int(p.Partitions)) + " partitions)"},
		{"Owner", dash(p.Owner)},
		{"Description", dash(p.Description)},
		{"Domain", dash(p.Domain)},
		{"Lifecycle", p.Lifecycle},
		{"Tags", dash(strings.Join(p.Tags, ", "))},
		{"Version", strconv.FormatInt(p.Version, 10)},
		{"Updated", dash(strings.TrimSpace(p.UpdatedAt + " " + p.UpdatedBy))},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	keys := make([]string, 0, len(p.BusinessMetadata))
	for k := range p.BusinessMetadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "Metadata %s:\t%v\n", k, p.BusinessMetadata[k])
	}
	for _, l := range p.Links {
		fmt.Fprintf(tw, "Link %s:\t%s\n", l.Title, l.URL)
	}
	for _, s := range []struct {
		name string
		s    *catalog.Schema
	}{{"Value schema", p.Schema}, {"Key schema", p.KeySchema}} {
		if s.s == nil {
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s version %d (id %d, %s)\n", s.name, s.s.Subject, s.s.Version, s.s.ID, s.s.Type)
		for _, f := range s.s.Fields {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Path, f.Type, strings.Join(f.Tags, ","))
		}
	}
	if p.Contract != nil {
		for _, r := range p.Contract.Rules {
			fmt.Fprintf(tw, "Rule %s:\t%s %s %s %s (on failure %s)\n", r.Name, r.Kind, r.Mode, r.Type, r.Expr, dash(r.OnFailure))
		}
	}
	return tw.Flush()
}

func printTeams(w io.Writer, ts []catalog.Team) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEAM\tMEMBERS\tDESCRIPTION")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, dash(strings.Join(t.Members, ",")), dash(t.Description))
	}
	return tw.Flush()
}

func printTagDefs(w io.Writer, ts []catalog.TagDef) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tMASK\tATTRIBUTES\tDESCRIPTION")
	for _, t := range ts {
		var as []string
		for _, a := range t.Attributes {
			s := a.Name + ":" + a.Type
			if a.Required {
				s += ":required"
			}
			if len(a.Values) > 0 {
				s += ":" + strings.Join(a.Values, "|")
			}
			as = append(as, s)
		}
		mask := t.Name == catalog.TagPII
		if t.Mask != nil {
			mask = *t.Mask
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\n", t.Name, mask, dash(strings.Join(as, " ")), dash(t.Description))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// apiClient calls a broker's /api/v1, authenticated as the security flags
// say.
type apiClient struct {
	base string
	sec  *securityOptions
	hc   *http.Client
}

func (a *apiClient) client() (*http.Client, error) {
	if a.hc != nil {
		return a.hc, nil
	}
	tc, err := a.sec.tlsConfig()
	if err != nil {
		return nil, err
	}
	a.hc = &http.Client{Timeout: 30 * time.Second}
	if tc != nil {
		a.hc.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	return a.hc, nil
}

// authorize adds the credentials of the security flags: a bearer token
// for OAUTHBEARER, else HTTP Basic when a mechanism or a user is given.
func (a *apiClient) authorize(req *http.Request) error {
	switch m := strings.ToUpper(strings.TrimSpace(a.sec.mechanism)); {
	case m == "OAUTHBEARER":
		tok, err := a.sec.token()
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case m != "" || a.sec.user != "":
		pw, err := a.sec.secret()
		if err != nil {
			return err
		}
		req.SetBasicAuth(a.sec.user, pw)
	}
	return nil
}

// call is do with query parameters.
func (a *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return a.do(ctx, method, path, body, out)
}

// do sends a request with body as JSON (nil: none) and decodes a JSON
// answer into out (nil: ignored). An error answer becomes an error with
// the API's message.
func (a *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	hc, err := a.client()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimSuffix(a.base, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := a.authorize(req); err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s (HTTP %d, error %d)", e.Message, resp.StatusCode, e.Code)
		}
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}
