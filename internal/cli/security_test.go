package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityOptionsPasswordFromStdinLeavesTheRest(t *testing.T) {
	in := strings.NewReader("s3cret\nrecord-1\nrecord-2\n")
	o := &securityOptions{mechanism: "SCRAM-SHA-512", user: "alice", passwordStdin: true, stdin: in}
	opts, err := o.kgoOpts()
	if err != nil || len(opts) != 1 {
		t.Fatalf("kgoOpts = %d opts, %v", len(opts), err)
	}
	if pw, _ := o.secret(); pw != "s3cret" {
		t.Fatalf("password %q", pw)
	}
	rest, _ := io.ReadAll(in)
	if string(rest) != "record-1\nrecord-2\n" {
		t.Fatalf("the records after the password line were consumed: %q left", rest)
	}
}

func TestSecurityOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNNEL_TEST_NO_PASSWORD", "")
	for _, tc := range []struct {
		name string
		o    securityOptions
		want string
	}{
		{"unknown mechanism", securityOptions{mechanism: "GSSAPI", user: "a", passwordEnv: "PATH"}, "want PLAIN"},
		{"no user", securityOptions{mechanism: "PLAIN"}, "needs --sasl-user"},
		{"no password", securityOptions{mechanism: "PLAIN", user: "a", passwordEnv: "RUNNEL_TEST_NO_PASSWORD"}, "needs a password"},
		{"no token file", securityOptions{mechanism: "OAUTHBEARER"}, "needs --sasl-token-file"},
		{"empty token file", securityOptions{mechanism: "OAUTHBEARER", tokenFile: empty}, "is empty"},
		{"missing CA", securityOptions{caFile: filepath.Join(dir, "nope.pem")}, "--tls-ca"},
		{"CA without PEM", securityOptions{caFile: empty}, "holds no PEM"},
		{"cert without key", securityOptions{certFile: empty}, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.o.kgoOpts()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
