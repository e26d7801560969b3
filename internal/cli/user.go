package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// defaultUserIterations is the iteration count of credentials the CLI
// sets, the broker's own default for the users it creates.
const defaultUserIterations = 8192

func newUserCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Set, list and delete SCRAM users (the credentials SASL PLAIN, SCRAM and HTTP Basic check)",
		Long: `Manage SCRAM credentials with the Kafka admin API, like kafka-configs
--entity-type users. The password is salted here; the broker stores only the
salted credential. Give the password on standard input or in an environment
variable, never on the command line.`,
		Example: `  printf '%s\n' "$ALICE_PASSWORD" | runnel user set alice --password-stdin
  runnel user set app --mechanism SCRAM-SHA-512 --password-env APP_PASSWORD
  runnel user list
  runnel user delete alice`,
	}
	cmd.AddCommand(newUserSetCommand(g), newUserListCommand(g), newUserDeleteCommand(g))
	return cmd
}

// userMechanisms parses --mechanism: one SCRAM mechanism, or both when "".
func userMechanisms(s string) ([]kadm.ScramMechanism, error) {
	switch strings.ToUpper(s) {
	case "":
		return []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512}, nil
	case "SCRAM-SHA-256":
		return []kadm.ScramMechanism{kadm.ScramSha256}, nil
	case "SCRAM-SHA-512":
		return []kadm.ScramMechanism{kadm.ScramSha512}, nil
	}
	return nil, fmt.Errorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512 (default: both)", s)
}

// readPassword returns the password from standard input (its first line)
// or from the environment variable env.
func readPassword(stdin io.Reader, fromStdin bool, env string) (string, error) {
	switch {
	case fromStdin && env != "":
		return "", errors.New("give the password with --password-stdin or --password-env, not both")
	case fromStdin:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("the password on standard input is empty")
		}
		return pw, nil
	case env != "":
		pw, ok := os.LookupEnv(env)
		if !ok || pw == "" {
			return "", fmt.Errorf("--password-env %s: the variable is not set or empty", env)
		}
		return pw, nil
	}
	return "", errors.New("give the password with --password-stdin or --password-env VAR (never on the command line)")
}

// userErr turns a Kafka error about user's credential into a sentence.
func userErr(user string, mech kadm.ScramMechanism, err error, brokerMsg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.ResourceNotFound):
		return fmt.Errorf("user %q has no %s credential", user, mech)
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("not authorized to manage users (needs ALTER on the cluster)")
	}
	return fmt.Errorf("user %q %s: %w", user, mech, kafkaErr(err, brokerMsg))
}

// alterOne sends one alteration and returns the user's result. One
// mechanism per request: Kafka refuses two changes of one user in one
// request.
func alterOne(cmd *cobra.Command, adm *kadm.Client, user string, mech kadm.ScramMechanism, del []kadm.DeleteSCRAM, up []kadm.UpsertSCRAM) error {
	res, err := adm.AlterUserSCRAMs(cmd.Context(), del, up)
	if err != nil {
		return fmt.Errorf("user %q %s: %w", user, mech, err)
	}
	r, ok := res[user]
	if !ok {
		return fmt.Errorf("user %q %s: the broker did not answer for this user", user, mech)
	}
	return userErr(user, mech, r.Err, r.ErrMessage)
}

func newUserSetCommand(g *globalOptions) *cobra.Command {
	var (
		mechanism  string
		iterations int32
		fromStdin  bool
		env        string
	)
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create a user or change its password (SCRAM-SHA-256 and SCRAM-SHA-512 by default)",
		Example: `  printf '%s\n' "$ALICE_PASSWORD" | runnel user set alice --password-stdin
  runnel user set app --mechanism SCRAM-SHA-512 --iterations 4096 --password-env APP_PASSWORD`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			if user == "" {
				return errors.New("the user name must not be empty")
			}
			mechs, err := userMechanisms(mechanism)
			if err != nil {
				return err
			}
			if iterations < 4096 || iterations > 16384 {
				return fmt.Errorf("--iterations %d: want 4096 to 16384 (Kafka's limits)", iterations)
			}
			password, err := readPassword(cmd.InOrStdin(), fromStdin, env)
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			out := cmd.OutOrStdout()
			for _, m := range mechs {
				up := []kadm.UpsertSCRAM{{User: user, Mechanism: m, Iterations: iterations, Password: password}}
				if err := alterOne(cmd, adm, user, m, nil, up); err != nil {
					return err
				}
				fmt.Fprintf(out, "Set the %s credential of user %q (%d iterations).\n", m, user, iterations)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&mechanism, "mechanism", "", "SCRAM-SHA-256 or SCRAM-SHA-512 (default: both)")
	f.Int32Var(&iterations, "iterations", defaultUserIterations, "SCRAM iterations, 4096 to 16384")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.StringVar(&env, "password-env", "", "read the password from this environment variable")
	return cmd
}

// userJSON is one user of user list --json.
type userJSON struct {
	User        string           `json:"user"`
	Credentials []credentialJSON `json:"credentials"`
}

type credentialJSON struct {
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

func newUserListCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users with their SCRAM mechanisms and iteration counts",
		Example: `  runnel user list
  runnel user list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			described, err := adm.DescribeUserSCRAMs(cmd.Context())
			if err != nil {
				if errors.Is(err, kerr.ClusterAuthorizationFailed) {
					return errors.New("not authorized to list users (needs DESCRIBE on the cluster)")
				}
				return fmt.Errorf("list users: %w", kafkaErr(err, ""))
			}
			return writeUsers(cmd.OutOrStdout(), described.Sorted(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the users as JSON")
	return cmd
}

func writeUsers(w io.Writer, users []kadm.DescribedUserSCRAM, asJSON bool) error {
	if asJSON {
		js := make([]userJSON, 0, len(users))
		for _, u := range users {
			uj := userJSON{User: u.User, Credentials: []credentialJSON{}}
			for _, c := range u.CredInfos {
				uj.Credentials = append(uj.Credentials, credentialJSON{Mechanism: c.Mechanism.String(), Iterations: c.Iterations})
			}
			js = append(js, uj)
		}
		return writeJSON(w, js)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
	for _, u := range users {
		if u.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t%s\n", u.User, kafkaErr(u.Err, u.ErrMessage))
			continue
		}
		for _, c := range u.CredInfos {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", u.User, c.Mechanism, c.Iterations)
		}
	}
	return tw.Flush()
}

func newUserDeleteCommand(g *globalOptions) *cobra.Command {
	var mechanism string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user's SCRAM credentials (every mechanism it has by default)",
		Example: `  runnel user delete alice
  runnel user delete alice --mechanism SCRAM-SHA-256`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			mechs, err := userMechanisms(mechanism)
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			if mechanism == "" {
				// Both by default: delete the ones the user has, so a user
				// with one mechanism is not an error.
				described, err := adm.DescribeUserSCRAMs(cmd.Context(), user)
				if err != nil {
					return fmt.Errorf("describe user %q: %w", user, kafkaErr(err, ""))
				}
				d := described[user]
				if errors.Is(d.Err, kerr.ResourceNotFound) || (d.Err == nil && len(d.CredInfos) == 0) {
					return fmt.Errorf("user %q has no SCRAM credentials", user)
				}
				if d.Err != nil {
					return fmt.Errorf("describe user %q: %w", user, kafkaErr(d.Err, d.ErrMessage))
				}
				mechs = mechs[:0]
				for _, c := range d.CredInfos {
					mechs = append(mechs, c.Mechanism)
				}
			}
			out := cmd.OutOrStdout()
			for _, m := range mechs {
				if err := alterOne(cmd, adm, user, m, []kadm.DeleteSCRAM{{User: user, Mechanism: m}}, nil); err != nil {
					return err
				}
				fmt.Fprintf(out, "Deleted the %s credential of user %q.\n", m, user)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mechanism, "mechanism", "", "SCRAM-SHA-256 or SCRAM-SHA-512 (default: every mechanism the user has)")
	return cmd
}
