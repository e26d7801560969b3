package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI executes the root command with args and returns its output and
// error. Brokers point at a closed port so nothing reaches a real cluster.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Setenv(envBrokers, "127.0.0.1:1")
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestEveryCommandHasHelpAndExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Short == "" {
			t.Errorf("%s has no short description", c.CommandPath())
		}
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand())
}

func TestHelpRuns(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"topic", "create", "--help"}, {"consume", "--help"},
		{"group", "reset-offsets", "--help"}, {"bench", "e2e", "--help"}, {"produce", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := runCLI(t, "", args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, "Examples:") {
				t.Fatalf("help output lacks usage or examples:\n%s", out)
			}
		})
	}
}

// TestUsageErrors checks that bad invocations fail with a readable message
// before any network access.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"create without name", []string{"topic", "create"}, "takes 1 argument(s) (NAME)"},
		{"create zero partitions", []string{"topic", "create", "x", "--partitions", "0"}, "--partitions 0"},
		{"create bad config", []string{"topic", "create", "x", "--config", "retention.ms"}, "want key=value"},
		{"alter nothing", []string{"topic", "alter", "x"}, "nothing to change"},
		{"alter set and delete", []string{"topic", "alter", "x", "--config", "a=1", "--delete-config", "a"}, "both set"},
		{"produce bad acks", []string{"produce", "t", "--acks", "2"}, "--acks"},
		{"produce bad compression", []string{"produce", "t", "--compression", "brotli"}, "--compression"},
		{"produce bad header", []string{"produce", "t", "--header", "novalue"}, "--header"},
		{"consume offset without partition", []string{"consume", "t", "--offset", "5"}, "--offset needs --partition"},
		{"consume two starts", []string{"consume", "t", "--from-beginning", "--timestamp", "0"}, "only one of"},
		{"consume group and partition", []string{"consume", "t", "-g", "g", "--partition", "1"}, "--partition cannot be used with --group"},
		{"consume bad format", []string{"consume", "t", "--format", "%q"}, "unknown placeholder"},
		{"consume print-key and format", []string{"consume", "t", "--print-key", "--format", "%v"}, "--print-key cannot be combined"},
		{"consume bad isolation", []string{"consume", "t", "--isolation", "x"}, "--isolation"},
		{"consume bad timestamp", []string{"consume", "t", "--timestamp", "soon"}, "--timestamp"},
		{"reset no target", []string{"group", "reset-offsets", "g", "--topic", "t"}, "say where to move"},
		{"reset no topic", []string{"group", "reset-offsets", "g", "--to-earliest"}, "--topic"},
		{"reset two targets", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--shift-by", "1"}, "only one"},
		{"bench idempotent acks", []string{"bench", "produce", "--acks", "1"}, "--idempotent needs --acks all"},
		{"bench small e2e record", []string{"bench", "e2e", "--record-size", "4"}, "at least 16 bytes"},
		{"bench zero producers", []string{"bench", "produce", "--producers", "0"}, "--producers 0"},
		{"bench negative rate", []string{"bench", "produce", "--rate", "-1"}, "--rate"},
		{"bad brokers", []string{"topic", "list", "--brokers", "nohost"}, "must be host:port"},
		{"serve bad log level", []string{"serve", "--log-level", "loud"}, "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestBrokersFromEnv(t *testing.T) {
	t.Setenv(envBrokers, "10.0.0.1:9092")
	root := NewRootCommand()
	f := root.PersistentFlags().Lookup("brokers")
	if f == nil || f.DefValue != "10.0.0.1:9092" || f.Shorthand != "b" {
		t.Fatalf("brokers flag = %+v", f)
	}
}
