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
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/sr"
)

// schemaOptions are the flags shared by the schema commands.
type schemaOptions struct {
	registry string
	sec      *securityOptions
}

// client returns a registry client for --registry and its URL.
func (o *schemaOptions) client() (*sr.Client, string, error) {
	return newRegistryClient(o.registry, o.sec)
}

func newSchemaCommand(g *globalOptions) *cobra.Command {
	o := &schemaOptions{sec: &g.sec}
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Register, inspect, check and delete schemas in the schema registry",
		Long: `Talk to a Confluent-compatible schema registry (Runnel's own listens on the
broker's --registry-addr, default 127.0.0.1:8081). Errors of the registry are
printed as "error_code: message", e.g. "40401: Subject 'x' not found".

Schema types are AVRO (the default), PROTOBUF and JSON (JSON Schema). A file
ending in .proto is PROTOBUF unless --type says otherwise.`,
		Example: `  runnel schema register orders-value --file order.avsc
  runnel schema get orders-value
  runnel schema list
  runnel schema check orders-value --file order-v2.avsc
  runnel schema config orders-value --compatibility FULL --normalize
  runnel schema delete orders-value --version 1`,
	}
	addRegistryFlag(cmd.PersistentFlags(), &o.registry)
	cmd.AddCommand(
		newSchemaRegisterCommand(o),
		newSchemaGetCommand(o),
		newSchemaListCommand(o),
		newSchemaVersionsCommand(o),
		newSchemaCheckCommand(o),
		newSchemaDeleteCommand(o),
		newSchemaConfigCommand(o),
		newSchemaModeCommand(o),
	)
	return cmd
}

// schemaInput are the flags that give a schema's text, type and
// references (register and check).
type schemaInput struct {
	file    string
	text    string
	typ     string
	refs    []string
	explain string // the command, for messages
}

func (in *schemaInput) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&in.file, "file", "f", "", "read the schema from this file (- for standard input)")
	f.StringVar(&in.text, "schema", "", "the schema text itself")
	f.StringVarP(&in.typ, "type", "t", "", "schema type: AVRO, PROTOBUF or JSON (default AVRO, PROTOBUF for a .proto file)")
	f.StringArrayVar(&in.refs, "ref", nil, "a reference name=subject:version (version may be latest; repeatable)")
}

// schema builds the sr.Schema the flags describe; latest references are
// resolved through cl.
func (in *schemaInput) schema(ctx context.Context, cl *sr.Client, regURL string, stdin io.Reader) (sr.Schema, error) {
	var s sr.Schema
	switch {
	case in.file != "" && in.text != "":
		return s, errors.New("give the schema with --file or --schema, not both")
	case in.file == "" && in.text == "":
		return s, errors.New("no schema given: use --file F or --schema TEXT")
	case in.text != "":
		s.Schema = in.text
	default:
		var (
			b   []byte
			err error
		)
		if in.file == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(in.file)
		}
		if err != nil {
			return s, fmt.Errorf("read schema: %w", err)
		}
		s.Schema = string(b)
	}
	if strings.TrimSpace(s.Schema) == "" {
		return s, errors.New("the schema is empty")
	}
	typ := in.typ
	if typ == "" && strings.EqualFold(filepath.Ext(in.file), ".proto") {
		typ = "PROTOBUF"
	}
	if err := s.Type.UnmarshalText([]byte(typ)); err != nil {
		return s, fmt.Errorf("--type %q: want AVRO, PROTOBUF or JSON", in.typ)
	}
	refs, err := parseSchemaRefs(ctx, cl, regURL, in.refs)
	if err != nil {
		return s, err
	}
	s.References = refs
	return s, nil
}

// parseSchemaRefs parses --ref name=subject:version flags. The version is
// after the last colon, so subjects with a context (":.ctx:subject") work.
func parseSchemaRefs(ctx context.Context, cl *sr.Client, regURL string, refs []string) ([]sr.SchemaReference, error) {
	var out []sr.SchemaReference
	seen := map[string]bool{}
	for _, r := range refs {
		name, sv, ok := strings.Cut(r, "=")
		i := strings.LastIndexByte(sv, ':')
		if !ok || name == "" || i <= 0 || i == len(sv)-1 {
			return nil, fmt.Errorf("--ref %q: want name=subject:version", r)
		}
		if seen[name] {
			return nil, fmt.Errorf("--ref: reference name %q given twice", name)
		}
		seen[name] = true
		subject, vs := sv[:i], sv[i+1:]
		version, err := parseVersion(vs)
		if err != nil {
			return nil, fmt.Errorf("--ref %q: %w", r, err)
		}
		if version == -1 {
			if cl == nil {
				return nil, fmt.Errorf("--ref %q: latest needs the registry", r)
			}
			ss, err := cl.SchemaByVersion(ctx, subject, -1)
			if err != nil {
				return nil, registryErr(regURL, fmt.Sprintf("resolve --ref %s", r), err)
			}
			version = ss.Version
		}
		out = append(out, sr.SchemaReference{Name: name, Subject: subject, Version: version})
	}
	return out, nil
}

// parseVersion reads a version: a positive number, or latest (-1).
func parseVersion(s string) (int, error) {
	if strings.EqualFold(s, "latest") || s == "-1" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("version %q: want a positive number or latest", s)
	}
	return v, nil
}

// readJSONFile decodes a JSON file strictly (unknown keys are errors) into
// v.
func readJSONFile(flag, path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--%s %s: %v", flag, path, err)
	}
	return nil
}

// registeredJSON is the output of schema register --json.
type registeredJSON struct {
	Subject string `json:"subject"`
	ID      int    `json:"id"`
	Version int    `json:"version"`
}

func newSchemaRegisterCommand(o *schemaOptions) *cobra.Command {
	var (
		in           schemaInput
		normalize    bool
		metadataFile string
		rulesetFile  string
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "register SUBJECT",
		Short: "Register a schema under a subject and print its id and version",
		Long: `Register a schema under SUBJECT. Registering a schema the subject already
has returns its existing id and version. The registry checks compatibility
with the subject's earlier versions first (see "runnel schema config").

--metadata-file and --ruleset-file attach a data contract: JSON documents
like the registry's "metadata" ({"tags":…,"properties":…,"sensitive":[…]})
and "ruleSet" ({"domainRules":[…],"migrationRules":[…]}).`,
		Example: `  runnel schema register orders-value --file order.avsc
  runnel schema register orders-value --schema '{"type":"string"}'
  runnel schema register orders-value --file order.proto --ref common/money.proto=money-value:latest
  runnel schema register users-value --type JSON --file user.schema.json --normalize
  runnel schema register orders-value --file order.avsc --ruleset-file rules.json --json`,
		Args: exactArgs(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := in.schema(ctx, cl, u, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if metadataFile != "" {
				s.SchemaMetadata = new(sr.SchemaMetadata)
				if err := readJSONFile("metadata-file", metadataFile, s.SchemaMetadata); err != nil {
					return err
				}
			}
			if rulesetFile != "" {
				s.SchemaRuleSet = new(sr.SchemaRuleSet)
				if err := readJSONFile("ruleset-file", rulesetFile, s.SchemaRuleSet); err != nil {
					return err
				}
			}
			if normalize {
				ctx = sr.WithParams(ctx, sr.Normalize)
			}
			ss, err := cl.CreateSchema(ctx, subject, s)
			if err != nil {
				return registryErr(u, fmt.Sprintf("register schema under subject %q", subject), err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), registeredJSON{Subject: subject, ID: ss.ID, Version: ss.Version})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Registered %s schema under subject %q: id %d, version %d.\n", s.Type, subject, ss.ID, ss.Version)
			return nil
		},
	}
	in.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&normalize, "normalize", false, "normalize the schema before registering (so equivalent texts share an id)")
	f.StringVar(&metadataFile, "metadata-file", "", "JSON file with the schema's metadata (tags, properties, sensitive)")
	f.StringVar(&rulesetFile, "ruleset-file", "", "JSON file with the schema's rule set (domainRules, migrationRules)")
	f.BoolVar(&asJSON, "json", false, "print the subject, id and version as JSON")
	return cmd
}

// schemaJSON is one schema of schema get --json.
type schemaJSON struct {
	Subject    string               `json:"subject,omitempty"`
	Version    int                  `json:"version,omitempty"`
	ID         int                  `json:"id"`
	Type       string               `json:"schemaType"`
	References []sr.SchemaReference `json:"references,omitempty"`
	Metadata   *sr.SchemaMetadata   `json:"metadata,omitempty"`
	RuleSet    *sr.SchemaRuleSet    `json:"ruleSet,omitempty"`
	Schema     string               `json:"schema"`
	Usages     []sr.SubjectVersion  `json:"usages,omitempty"`
}

func newSchemaGetCommand(o *schemaOptions) *cobra.Command {
	var (
		version    string
		id         int
		deleted    bool
		schemaOnly bool
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "get [SUBJECT]",
		Short: "Print a schema by subject and version, or by id",
		Long: `Print a schema with its subject, version, id, type, references and data
contract. Give SUBJECT (with --version, default latest) or --id N; by id the
subjects and versions that use the schema are listed.`,
		Example: `  runnel schema get orders-value
  runnel schema get orders-value --version 2
  runnel schema get --id 7
  runnel schema get orders-value --schema-only > order.avsc
  runnel schema get orders-value --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idSet := cmd.Flags().Changed("id")
			switch {
			case idSet && len(args) == 1:
				return errors.New("give SUBJECT or --id, not both")
			case !idSet && len(args) == 0:
				return errors.New("say which schema: runnel schema get SUBJECT [--version N] or --id N")
			case idSet && id <= 0:
				return fmt.Errorf("--id %d: want a positive schema id", id)
			case idSet && cmd.Flags().Changed("version"):
				return errors.New("--version needs SUBJECT, not --id")
			}
			v, err := parseVersion(version)
			if err != nil {
				return fmt.Errorf("--version: %w", err)
			}
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if deleted {
				ctx = sr.WithParams(ctx, sr.ShowDeleted)
			}
			var out schemaJSON
			if idSet {
				s, err := cl.SchemaByID(ctx, id)
				if err != nil {
					return registryErr(u, fmt.Sprintf("get schema id %d", id), err)
				}
				usages, err := cl.SchemaVersionsByID(ctx, id)
				if err != nil {
					return registryErr(u, fmt.Sprintf("get the subjects of schema id %d", id), err)
				}
				out = schemaJSON{ID: id, Type: s.Type.String(), References: s.References,
					Metadata: s.SchemaMetadata, RuleSet: s.SchemaRuleSet, Schema: s.Schema, Usages: usages}
			} else {
				ss, err := cl.SchemaByVersion(ctx, args[0], v)
				if err != nil {
					return registryErr(u, fmt.Sprintf("get subject %q version %s", args[0], versionText(v)), err)
				}
				out = schemaJSON{Subject: ss.Subject, Version: ss.Version, ID: ss.ID, Type: ss.Type.String(),
					References: ss.References, Metadata: ss.SchemaMetadata, RuleSet: ss.SchemaRuleSet, Schema: ss.Schema.Schema}
			}
			w := cmd.OutOrStdout()
			switch {
			case asJSON:
				return writeJSON(w, out)
			case schemaOnly:
				_, err := io.WriteString(w, strings.TrimRight(out.Schema, "\n")+"\n")
				return err
			}
			return writeSchema(w, out)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&version, "version", "V", "latest", "version of SUBJECT: a number or latest")
	f.IntVar(&id, "id", 0, "get the schema with this id instead of a subject's version")
	f.BoolVar(&deleted, "deleted", false, "also find soft-deleted versions")
	f.BoolVar(&schemaOnly, "schema-only", false, "print only the schema text")
	f.BoolVar(&asJSON, "json", false, "print the schema and its details as JSON")
	return cmd
}

// writeSchema prints a schema's details, then its text.
func writeSchema(w io.Writer, s schemaJSON) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	if s.Subject != "" {
		fmt.Fprintf(tw, "Subject:\t%s\n", s.Subject)
		fmt.Fprintf(tw, "Version:\t%d\n", s.Version)
	}
	fmt.Fprintf(tw, "ID:\t%d\n", s.ID)
	fmt.Fprintf(tw, "Type:\t%s\n", s.Type)
	for i, r := range s.References {
		label := ""
		if i == 0 {
			label = "References:"
		}
		fmt.Fprintf(tw, "%s\t%s = %s version %d\n", label, r.Name, r.Subject, r.Version)
	}
	if len(s.Usages) > 0 {
		var us []string
		for _, u := range s.Usages {
			us = append(us, fmt.Sprintf("%s version %d", u.Subject, u.Version))
		}
		fmt.Fprintf(tw, "Used by:\t%s\n", strings.Join(us, ", "))
	}
	if s.Metadata != nil {
		b, _ := json.Marshal(s.Metadata)
		fmt.Fprintf(tw, "Metadata:\t%s\n", b)
	}
	if s.RuleSet != nil {
		b, _ := json.Marshal(s.RuleSet)
		fmt.Fprintf(tw, "Rule set:\t%s\n", b)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", strings.TrimRight(prettySchema(s.Schema), "\n"))
	return err
}

// prettySchema indents JSON schema text (Avro, JSON Schema); Protobuf text
// is returned unchanged.
func prettySchema(text string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(text), "", "  ") == nil {
		return b.String()
	}
	return text
}

// subjectRowJSON is one subject of schema list --json.
type subjectRowJSON struct {
	Subject string `json:"subject"`
	Version int    `json:"latest_version"`
	ID      int    `json:"id"`
	Type    string `json:"schemaType"`
	Deleted bool   `json:"deleted,omitempty"`
}

func newSchemaListCommand(o *schemaOptions) *cobra.Command {
	var (
		deleted bool
		prefix  string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List subjects with their latest version, id and type",
		Example: `  runnel schema list
  runnel schema list --prefix orders-
  runnel schema list --deleted
  runnel schema list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if prefix != "" {
				ctx = sr.WithParams(ctx, sr.SubjectPrefix(prefix))
			}
			live, err := cl.Subjects(ctx)
			if err != nil {
				return registryErr(u, "list subjects", err)
			}
			subjects := live
			isLive := map[string]bool{}
			for _, s := range live {
				isLive[s] = true
			}
			if deleted {
				if subjects, err = cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); err != nil {
					return registryErr(u, "list subjects", err)
				}
			}
			sort.Strings(subjects)
			rows := make([]subjectRowJSON, 0, len(subjects))
			for _, s := range subjects {
				lctx := ctx
				if !isLive[s] {
					lctx = sr.WithParams(ctx, sr.ShowDeleted)
				}
				ss, err := cl.SchemaByVersion(lctx, s, -1)
				if err != nil {
					return registryErr(u, fmt.Sprintf("get the latest version of subject %q", s), err)
				}
				rows = append(rows, subjectRowJSON{Subject: s, Version: ss.Version, ID: ss.ID, Type: ss.Type.String(), Deleted: !isLive[s]})
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, rows)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			if deleted {
				fmt.Fprintln(tw, "SUBJECT\tLATEST\tID\tTYPE\tDELETED")
			} else {
				fmt.Fprintln(tw, "SUBJECT\tLATEST\tID\tTYPE")
			}
			for _, r := range rows {
				if deleted {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%t\n", r.Subject, r.Version, r.ID, r.Type, r.Deleted)
				} else {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Subject, r.Version, r.ID, r.Type)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&deleted, "deleted", false, "include soft-deleted subjects")
	f.StringVar(&prefix, "prefix", "", "only subjects starting with this prefix")
	f.BoolVar(&asJSON, "json", false, "print the subjects as JSON")
	return cmd
}

// versionRowJSON is one version of schema versions --json.
type versionRowJSON struct {
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Type    string `json:"schemaType"`
}

func newSchemaVersionsCommand(o *schemaOptions) *cobra.Command {
	var (
		deleted bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "versions SUBJECT",
		Short: "List the versions of a subject with their schema ids",
		Example: `  runnel schema versions orders-value
  runnel schema versions orders-value --deleted --json`,
		Args: exactArgs(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if deleted {
				ctx = sr.WithParams(ctx, sr.ShowDeleted)
			}
			versions, err := cl.SubjectVersions(ctx, subject)
			if err != nil {
				return registryErr(u, fmt.Sprintf("list versions of subject %q", subject), err)
			}
			sort.Ints(versions)
			rows := make([]versionRowJSON, 0, len(versions))
			for _, v := range versions {
				ss, err := cl.SchemaByVersion(ctx, subject, v)
				if err != nil {
					return registryErr(u, fmt.Sprintf("get subject %q version %d", subject, v), err)
				}
				rows = append(rows, versionRowJSON{Version: v, ID: ss.ID, Type: ss.Type.String()})
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, rows)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tID\tTYPE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%d\t%d\t%s\n", r.Version, r.ID, r.Type)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "include soft-deleted versions")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the versions as JSON")
	return cmd
}

// errIncompatible is returned by schema check when the schema is not
// compatible; the reasons are printed before it.
var errIncompatible = errors.New("schema is incompatible")

func newSchemaCheckCommand(o *schemaOptions) *cobra.Command {
	var (
		in        schemaInput
		version   string
		verbose   bool
		normalize bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "check SUBJECT",
		Short: "Check whether a schema is compatible with a subject",
		Long: `Ask the registry whether a schema could be registered under SUBJECT: by
default against the versions the subject's compatibility level names (the
latest, or all for a transitive level); with --version against that one.
An incompatible schema prints the registry's reasons and exits with status 1.`,
		Example: `  runnel schema check orders-value --file order-v2.avsc
  runnel schema check orders-value --file order-v2.avsc --version 1
  runnel schema check orders-value --type PROTOBUF --file order.proto --json`,
		Args: exactArgs(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			v := -2 // every version the compatibility level names
			if version != "" {
				var err error
				if v, err = parseVersion(version); err != nil {
					return fmt.Errorf("--version: %w", err)
				}
			}
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := in.schema(ctx, cl, u, cmd.InOrStdin())
			if err != nil {
				return err
			}
			var params []sr.Param
			if verbose {
				params = append(params, sr.Verbose)
			}
			if normalize {
				params = append(params, sr.Normalize)
			}
			res, err := cl.CheckCompatibility(sr.WithParams(ctx, params...), subject, v, s)
			if err != nil {
				return registryErr(u, fmt.Sprintf("check compatibility with subject %q", subject), err)
			}
			w := cmd.OutOrStdout()
			against := "its versions"
			if v > 0 {
				against = fmt.Sprintf("version %d", v)
			} else if v == -1 {
				against = "its latest version"
			}
			if asJSON {
				if res.Messages == nil {
					res.Messages = []string{}
				}
				if err := writeJSON(w, res); err != nil {
					return err
				}
			} else if res.Is {
				fmt.Fprintf(w, "Compatible with subject %q (%s).\n", subject, against)
			} else {
				fmt.Fprintf(w, "Incompatible with subject %q (%s).\n", subject, against)
				for _, m := range res.Messages {
					fmt.Fprintf(w, "  - %s\n", m)
				}
			}
			if !res.Is {
				return errIncompatible
			}
			return nil
		},
	}
	in.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&version, "version", "V", "", "check against this version (a number or latest) instead of what the compatibility level names")
	f.BoolVar(&verbose, "verbose", true, "ask the registry for the reasons of an incompatibility (--verbose=false for the bare verdict)")
	f.BoolVar(&normalize, "normalize", false, "normalize the schema before checking")
	f.BoolVar(&asJSON, "json", false, "print the registry's answer as JSON")
	return cmd
}

// deletedJSON is the output of schema delete --json.
type deletedJSON struct {
	Subject   string `json:"subject"`
	Versions  []int  `json:"versions"`
	Permanent bool   `json:"permanent"`
}

func newSchemaDeleteCommand(o *schemaOptions) *cobra.Command {
	var (
		version   string
		permanent bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "delete SUBJECT",
		Short: "Delete a subject or one of its versions (soft, or --permanent)",
		Long: `Delete a subject, or with --version one version of it. A soft delete hides
the schema from lookups but keeps its id working for readers of old data and
lets the subject be restored by registering again. --permanent removes it for
good: a version or subject not yet soft-deleted is soft-deleted first.`,
		Example: `  runnel schema delete orders-value
  runnel schema delete orders-value --version 2
  runnel schema delete orders-value --permanent`,
		Args: exactArgs(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			v := 0
			if version != "" {
				var err error
				if v, err = parseVersion(version); err != nil {
					return fmt.Errorf("--version: %w", err)
				}
			}
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			how := sr.SoftDelete
			if permanent {
				how = sr.HardDelete
			}
			var versions []int
			if v == 0 {
				versions, err = cl.DeleteSubject(ctx, subject, how)
				if permanent && isRegistryCode(err, 40405) {
					if _, err = cl.DeleteSubject(ctx, subject, sr.SoftDelete); err == nil {
						versions, err = cl.DeleteSubject(ctx, subject, sr.HardDelete)
					}
				}
				if err != nil {
					return registryErr(u, fmt.Sprintf("delete subject %q", subject), err)
				}
			} else {
				if v == -1 {
					ss, err := cl.SchemaByVersion(ctx, subject, -1)
					if err != nil {
						return registryErr(u, fmt.Sprintf("find the latest version of subject %q", subject), err)
					}
					v = ss.Version
				}
				err = cl.DeleteSchema(ctx, subject, v, how)
				if permanent && isRegistryCode(err, 40407) {
					if err = cl.DeleteSchema(ctx, subject, v, sr.SoftDelete); err == nil {
						err = cl.DeleteSchema(ctx, subject, v, sr.HardDelete)
					}
				}
				if err != nil {
					return registryErr(u, fmt.Sprintf("delete subject %q version %d", subject, v), err)
				}
				versions = []int{v}
			}
			sort.Ints(versions)
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, deletedJSON{Subject: subject, Versions: versions, Permanent: permanent})
			}
			kind := "Soft-deleted"
			if permanent {
				kind = "Permanently deleted"
			}
			vs := make([]string, len(versions))
			for i, x := range versions {
				vs[i] = strconv.Itoa(x)
			}
			label := "versions"
			if len(vs) == 1 {
				label = "version"
			}
			fmt.Fprintf(w, "%s subject %q %s %s.\n", kind, subject, label, strings.Join(vs, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&version, "version", "V", "", "delete only this version (a number or latest)")
	f.BoolVar(&permanent, "permanent", false, "delete for good (soft-deleting first when needed)")
	f.BoolVar(&asJSON, "json", false, "print the deleted versions as JSON")
	return cmd
}

// configJSON is a registry config as GET /config returns it, and the
// output of schema config --json (with subject and inherited).
type configJSON struct {
	Subject        string `json:"subject,omitempty"`
	Compatibility  string `json:"compatibilityLevel,omitempty"`
	Inherited      bool   `json:"inherited,omitempty"`
	Normalize      *bool  `json:"normalize,omitempty"`
	Alias          string `json:"alias,omitempty"`
	Group          string `json:"compatibilityGroup,omitempty"`
	ValidateFields *bool  `json:"validateFields,omitempty"`
	// The data contract defaults and overrides as the registry has them
	// (rule fields it keeps verbatim included).
	DefaultMetadata  json.RawMessage `json:"defaultMetadata,omitempty"`
	OverrideMetadata json.RawMessage `json:"overrideMetadata,omitempty"`
	DefaultRuleSet   json.RawMessage `json:"defaultRuleSet,omitempty"`
	OverrideRuleSet  json.RawMessage `json:"overrideRuleSet,omitempty"`
}

// configUpdate is the body of PUT /config: only the fields given are sent,
// so the others keep their values (franz-go's SetCompatibility always
// sends a level and knows no validateFields, hence the raw request).
type configUpdate struct {
	Compatibility    string             `json:"compatibility,omitempty"`
	Normalize        *bool              `json:"normalize,omitempty"`
	Alias            string             `json:"alias,omitempty"`
	Group            string             `json:"compatibilityGroup,omitempty"`
	ValidateFields   *bool              `json:"validateFields,omitempty"`
	DefaultMetadata  *sr.SchemaMetadata `json:"defaultMetadata,omitempty"`
	OverrideMetadata *sr.SchemaMetadata `json:"overrideMetadata,omitempty"`
	DefaultRuleSet   *sr.SchemaRuleSet  `json:"defaultRuleSet,omitempty"`
	OverrideRuleSet  *sr.SchemaRuleSet  `json:"overrideRuleSet,omitempty"`
}

// configPath is the REST path of SUBJECT's config, or the global one.
func configPath(subject string) string {
	if subject == "" {
		return "/config"
	}
	return "/config/" + url.PathEscape(subject)
}

func newSchemaConfigCommand(o *schemaOptions) *cobra.Command {
	var (
		level, alias, group               string
		normalize, validateFields         bool
		defaultMetadata, overrideMetadata string
		defaultRuleSet, overrideRuleSet   string
		reset, asJSON                     bool
	)
	cmd := &cobra.Command{
		Use:   "config [SUBJECT]",
		Short: "Show or set the registry config (compatibility level and more), globally or of a subject",
		Long: `Show the config of SUBJECT (or the global one without SUBJECT), or change
it with the flags below; fields not given keep their values. A subject
without a config of its own uses the global one, shown as inherited.
--reset removes the subject's own config.

  --compatibility        NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
                         FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE
  --normalize            normalize schemas on registration and lookup
  --compatibility-group  a metadata property: new schemas are checked only
                         against versions with the same value of it
  --alias                lookups of SUBJECT read this subject instead
                         (registrations still go to SUBJECT)
  --validate-fields      Confluent's validateFields flag (stored and shown;
                         Runnel always validates Avro field names)
  --default-metadata, --override-metadata
                         JSON files like a schema's "metadata"
                         ({"properties":{…},"tags":{…},"sensitive":[…]}):
                         default fills in what a new schema does not say,
                         override wins over it
  --default-ruleset, --override-ruleset
                         JSON files like a schema's "ruleSet"
                         ({"domainRules":[…],"migrationRules":[…]}), layered
                         the same way`,
		Example: `  runnel schema config
  runnel schema config --compatibility FULL_TRANSITIVE
  runnel schema config orders-value
  runnel schema config orders-value --compatibility NONE
  runnel schema config orders-value --normalize --compatibility-group app.major
  runnel schema config orders --alias orders-value
  runnel schema config orders-value --override-ruleset rules.json --json
  runnel schema config orders-value --reset`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := ""
			if len(args) == 1 {
				subject = args[0]
			}
			flags := cmd.Flags()
			var up configUpdate
			setting := false
			if flags.Changed("compatibility") {
				var lvl sr.CompatibilityLevel
				if err := lvl.UnmarshalText([]byte(level)); err != nil {
					return fmt.Errorf("--compatibility %q: want NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE", level)
				}
				up.Compatibility, setting = lvl.String(), true
			}
			if flags.Changed("normalize") {
				up.Normalize, setting = &normalize, true
			}
			if flags.Changed("validate-fields") {
				up.ValidateFields, setting = &validateFields, true
			}
			if flags.Changed("alias") {
				if strings.TrimSpace(alias) == "" {
					return errors.New("--alias: want a subject name")
				}
				if subject == "" {
					return errors.New("--alias needs SUBJECT: an alias makes one subject read another")
				}
				up.Alias, setting = alias, true
			}
			if flags.Changed("compatibility-group") {
				if strings.TrimSpace(group) == "" {
					return errors.New("--compatibility-group: want a metadata property name")
				}
				up.Group, setting = group, true
			}
			for _, f := range []struct {
				flag, path string
				into       any // a pointer to the field to allocate and fill
			}{
				{"default-metadata", defaultMetadata, &up.DefaultMetadata},
				{"override-metadata", overrideMetadata, &up.OverrideMetadata},
				{"default-ruleset", defaultRuleSet, &up.DefaultRuleSet},
				{"override-ruleset", overrideRuleSet, &up.OverrideRuleSet},
			} {
				if !flags.Changed(f.flag) {
					continue
				}
				var v any
				switch p := f.into.(type) {
				case **sr.SchemaMetadata:
					*p = new(sr.SchemaMetadata)
					v = *p
				case **sr.SchemaRuleSet:
					*p = new(sr.SchemaRuleSet)
					v = *p
				}
				if err := readJSONFile(f.flag, f.path, v); err != nil {
					return err
				}
				setting = true
			}
			if reset && (setting || subject == "") {
				return errors.New("--reset needs SUBJECT and no other config flag")
			}
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			where := "global"
			if subject != "" {
				where = fmt.Sprintf("subject %q", subject)
			}
			w := cmd.OutOrStdout()
			switch {
			case reset:
				if err := cl.Do(ctx, http.MethodDelete, configPath(subject), nil, nil); err != nil {
					return registryErr(u, "reset the config of "+where, err)
				}
				fmt.Fprintf(w, "Removed the config of %s; it uses the global config.\n", where)
				return nil
			case setting:
				var got configJSON
				if err := cl.Do(ctx, http.MethodPut, configPath(subject), up, &got); err != nil {
					return registryErr(u, "set the config of "+where, err)
				}
				if asJSON {
					got.Subject = subject
					return writeJSON(w, got)
				}
				if up == (configUpdate{Compatibility: up.Compatibility}) {
					fmt.Fprintf(w, "Compatibility of %s set to %s.\n", where, up.Compatibility)
					return nil
				}
				fmt.Fprintf(w, "Config of %s updated:\n", where)
				return writeConfig(w, got, "  ")
			}
			var got configJSON
			err = cl.Do(ctx, http.MethodGet, configPath(subject), nil, &got)
			inherited := false
			if subject != "" && isRegistryCode(err, 40408) {
				inherited = true
				got = configJSON{}
				err = cl.Do(ctx, http.MethodGet, configPath(""), nil, &got)
			}
			if err != nil {
				return registryErr(u, "get the config of "+where, err)
			}
			got.Subject, got.Inherited = subject, inherited
			if asJSON {
				return writeJSON(w, got)
			}
			level := got.Compatibility
			if level == "" && subject != "" {
				// The subject's config sets other fields but no level.
				var global configJSON
				if err := cl.Do(ctx, http.MethodGet, configPath(""), nil, &global); err != nil {
					return registryErr(u, "get the global config", err)
				}
				level, inherited = global.Compatibility, true
			}
			suffix := ""
			if inherited {
				suffix = " (inherited from the global level)"
			}
			fmt.Fprintf(w, "Compatibility of %s: %s%s\n", where, level, suffix)
			c := got
			c.Compatibility = ""
			return writeConfig(w, c, "")
		},
	}
	f := cmd.Flags()
	f.StringVar(&level, "compatibility", "", "set the compatibility level")
	f.BoolVar(&normalize, "normalize", false, "set normalize (--normalize=false to turn it off)")
	f.StringVar(&group, "compatibility-group", "", "set the compatibility group (a metadata property name)")
	f.StringVar(&alias, "alias", "", "make lookups of SUBJECT read this subject")
	f.BoolVar(&validateFields, "validate-fields", false, "set validateFields (--validate-fields=false to turn it off)")
	f.StringVar(&defaultMetadata, "default-metadata", "", "JSON file with the default metadata of new schemas")
	f.StringVar(&overrideMetadata, "override-metadata", "", "JSON file with the metadata that overrides new schemas'")
	f.StringVar(&defaultRuleSet, "default-ruleset", "", "JSON file with the default rule set of new schemas")
	f.StringVar(&overrideRuleSet, "override-ruleset", "", "JSON file with the rule set that overrides new schemas'")
	f.BoolVar(&reset, "reset", false, "remove SUBJECT's own config so it uses the global one")
	f.BoolVar(&asJSON, "json", false, "print the config as JSON")
	return cmd
}

// writeConfig prints the fields of c that are set, one a line, the
// compatibility level first.
func writeConfig(w io.Writer, c configJSON, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	line := func(label, value string) { fmt.Fprintf(tw, "%s%s:\t%s\n", indent, label, value) }
	js := func(raw json.RawMessage) string {
		// Compact, without HTML escapes (a CEL rule's ">" stays ">").
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return string(raw)
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) != nil {
			return string(raw)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	if c.Compatibility != "" {
		line("Compatibility", c.Compatibility)
	}
	if c.Normalize != nil {
		line("Normalize", strconv.FormatBool(*c.Normalize))
	}
	if c.Alias != "" {
		line("Alias", c.Alias)
	}
	if c.Group != "" {
		line("Compatibility group", c.Group)
	}
	if c.ValidateFields != nil {
		line("Validate fields", strconv.FormatBool(*c.ValidateFields))
	}
	if c.DefaultMetadata != nil {
		line("Default metadata", js(c.DefaultMetadata))
	}
	if c.OverrideMetadata != nil {
		line("Override metadata", js(c.OverrideMetadata))
	}
	if c.DefaultRuleSet != nil {
		line("Default rule set", js(c.DefaultRuleSet))
	}
	if c.OverrideRuleSet != nil {
		line("Override rule set", js(c.OverrideRuleSet))
	}
	return tw.Flush()
}

// modeJSON is the output of schema mode --json.
type modeJSON struct {
	Subject   string `json:"subject,omitempty"`
	Mode      string `json:"mode"`
	Inherited bool   `json:"inherited,omitempty"`
}

func newSchemaModeCommand(o *schemaOptions) *cobra.Command {
	var (
		set    string
		force  bool
		reset  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "mode [SUBJECT]",
		Short: "Show or set the registry mode, globally or of a subject",
		Long: `Show the mode of SUBJECT (or the global mode without SUBJECT), or set it
with --set: READWRITE (normal), READONLY (no registrations) or IMPORT
(registrations keep the ids and versions they are given; the registry or
subject must be empty unless --force).`,
		Example: `  runnel schema mode
  runnel schema mode --set READONLY
  runnel schema mode orders-value --set IMPORT --force
  runnel schema mode orders-value --reset`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := ""
			if len(args) == 1 {
				subject = args[0]
			}
			var mode sr.Mode
			if set != "" {
				if err := mode.UnmarshalText([]byte(set)); err != nil {
					return fmt.Errorf("--set %q: want READWRITE, READONLY or IMPORT", set)
				}
			}
			if reset && (set != "" || subject == "") {
				return errors.New("--reset needs SUBJECT and no --set")
			}
			cl, u, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			where := "the registry"
			if subject != "" {
				where = fmt.Sprintf("subject %q", subject)
			}
			w := cmd.OutOrStdout()
			switch {
			case reset:
				if err := cl.ResetMode(ctx, subject)[0].Err; err != nil {
					return registryErr(u, "reset the mode of "+where, err)
				}
				fmt.Fprintf(w, "Removed the mode of %s; it uses the global mode.\n", where)
				return nil
			case set != "":
				if force {
					ctx = sr.WithParams(ctx, sr.Force)
				}
				if err := cl.SetMode(ctx, mode, subject)[0].Err; err != nil {
					return registryErr(u, "set the mode of "+where, err)
				}
				if asJSON {
					return writeJSON(w, modeJSON{Subject: subject, Mode: mode.String()})
				}
				fmt.Fprintf(w, "Mode of %s set to %s.\n", where, mode)
				return nil
			}
			res := cl.Mode(ctx, subject)[0]
			inherited := false
			if subject != "" && isRegistryCode(res.Err, 40409) {
				inherited = true
				res = cl.Mode(ctx)[0]
			}
			if res.Err != nil {
				return registryErr(u, "get the mode of "+where, res.Err)
			}
			if asJSON {
				return writeJSON(w, modeJSON{Subject: subject, Mode: res.Mode.String(), Inherited: inherited})
			}
			suffix := ""
			if inherited {
				suffix = " (inherited from the global mode)"
			}
			fmt.Fprintf(w, "Mode of %s: %s%s\n", where, res.Mode, suffix)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&set, "set", "", "set the mode: READWRITE, READONLY or IMPORT")
	f.BoolVar(&force, "force", false, "with --set IMPORT: allow it although schemas exist")
	f.BoolVar(&reset, "reset", false, "remove SUBJECT's own mode so it uses the global one")
	f.BoolVar(&asJSON, "json", false, "print the mode as JSON")
	return cmd
}
