package registry

import (
	"errors"
	"testing"
)

// TestConfigChangeRacingRegistration changes a compatibility level between
// the reads a registration is decided on and its commit. The registration
// must not be written on the stale level: its Txn fails, the retry reads
// the new level and refuses the incompatible schema.
func TestConfigChangeRacingRegistration(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		// noneAt is the config set to NONE first (so sC is accepted on the
		// first read); changeAt is the config set to changeLevel before
		// the commit ("" = global).
		noneAt, changeAt, changeLevel string
	}{
		{"subject level set to BACKWARD", "sub", "sub", "sub", CompatBackward},
		{"global level set to BACKWARD", "glob", "", "", CompatBackward},
		{"subject level created over a global NONE", "created", "", "created", CompatFull},
		{"context level created", ":.ctx:s", "", ":.ctx:", CompatBackward},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			cli := startEtcd(t)
			r, other := newRegistry(t, cli), newRegistry(t, cli)
			if _, err := r.SetConfig(ctx, tt.noneAt, Config{Compatibility: CompatNone}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Register(ctx, RegisterRequest{Subject: tt.subject, Schema: sA}); err != nil {
				t.Fatal(err)
			}
			var attempts []int
			r.beforeCommit = func(attempt int) {
				attempts = append(attempts, attempt)
				if attempt == 0 {
					// Another broker changes the level after this
					// registration read NONE.
					if _, err := other.SetConfig(ctx, tt.changeAt, Config{Compatibility: tt.changeLevel}); err != nil {
						t.Error(err)
					}
				}
			}
			_, err := r.Register(ctx, RegisterRequest{Subject: tt.subject, Schema: sC})
			if !errors.Is(err, ErrIncompatible) {
				t.Fatalf("Register = %v, want ErrIncompatible (decided on the new level)", err)
			}
			if len(attempts) != 1 {
				// The retry stops at the compatibility check, before a commit.
				t.Fatalf("commit attempts %v, want [0]", attempts)
			}
			vs, err := r.Versions(ctx, tt.subject, ListOptions{})
			if err != nil || len(vs) != 1 {
				t.Fatalf("versions = %v, %v; want only the first", vs, err)
			}
			// A config write that does not break the schema still makes the
			// attempt start over, and the retry lets it in.
			if _, err := r.SetConfig(ctx, tt.changeAt, Config{Compatibility: CompatNone}); err != nil {
				t.Fatal(err)
			}
			attempts = nil
			r.beforeCommit = func(attempt int) {
				attempts = append(attempts, attempt)
				if attempt == 0 {
					if _, err := other.SetConfig(ctx, tt.changeAt, Config{Compatibility: CompatNone}); err != nil {
						t.Error(err)
					}
				}
			}
			ss, err := r.Register(ctx, RegisterRequest{Subject: tt.subject, Schema: sC})
			if err != nil || ss.Version != 2 {
				t.Fatalf("Register after reverting = %+v, %v", ss, err)
			}
			if len(attempts) != 2 {
				t.Fatalf("commit attempts %v, want [0 1] (the config changed under the first)", attempts)
			}
		})
	}
}
