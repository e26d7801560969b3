package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
)

func TestParseBootstrapUsers(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []BootstrapUser
		wantErr string
	}{
		{"users, comments and blanks", "# admins\n\nadmin:s3cret\n  app : pa:ss:word \r\n", []BootstrapUser{{"admin", "s3cret"}, {"app", " pa:ss:word"}}, ""},
		{"empty file", "", nil, ""},
		{"no colon", "admin:pw\nbroken-line\n", nil, "line 2: want name:password"},
		{"empty name", ":pw\n", nil, "line 1: empty user name"},
		{"empty password", "\n\nadmin:\n", nil, "line 3: empty password"},
		{"duplicate", "a:1\nb:2\na:3\n", nil, `line 3: user "a" is already on line 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBootstrapUsers("users", []byte(tt.data))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBootstrapUsers) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Fatalf("error shows a password: %v", err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("user %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestBootstrapCreatesMissingUsers(t *testing.T) {
	etcd := clustertest.Start(t)
	c := newTestCredentials(t, etcd.Client())
	ctx := testCtx(t)
	// carol exists with another password: bootstrap leaves her alone.
	if err := c.SetPassword(ctx, "carol", "changed-since", []string{config.MechanismSCRAMSHA256}, 4096); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("# bootstrap\nadmin:admin-secret\ncarol:from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	created, err := Bootstrap(ctx, c, path, 8192)
	if err != nil || strings.Join(created, ",") != "admin" {
		t.Fatalf("Bootstrap = %v, %v; want [admin]", created, err)
	}
	got := c.Describe([]string{"admin"})
	if len(got) != 1 || len(got[0].Mechanisms) != 2 || got[0].Mechanisms[0].Iterations != 8192 || got[0].Mechanisms[1].Iterations != 8192 {
		t.Fatalf("admin = %+v, want both mechanisms at 8192", got)
	}
	a := newTestAuthenticator(t, c, config.SASLConfig{Mechanisms: allPasswordMechanisms})
	if _, err := a.CheckPassword(ctx, "admin", "admin-secret"); err != nil {
		t.Fatalf("bootstrap admin: %v", err)
	}
	if _, err := a.CheckPassword(ctx, "carol", "changed-since"); err != nil {
		t.Fatalf("carol's own password was reset: %v", err)
	}
	// A second start creates nothing.
	if created, err := Bootstrap(ctx, c, path, 8192); err != nil || len(created) != 0 {
		t.Fatalf("second Bootstrap = %v, %v", created, err)
	}
	if _, err := Bootstrap(ctx, c, filepath.Join(t.TempDir(), "missing"), 8192); !errors.Is(err, ErrBootstrapUsers) {
		t.Fatalf("missing file = %v", err)
	}
}
