package registry

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestModeGuardsFailAfterModeChange checks that the guards a registration
// writes with stop matching once any mode it depends on changes, including
// a subject mode created after the read.
func TestModeGuardsFailAfterModeChange(t *testing.T) {
	ctx := testCtx(t)
	cli := startEtcd(t)
	r := newRegistry(t, cli)
	sn, err := parseSubject("orders-value", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []struct{ name, subject string }{{"subject mode created", "orders-value"}, {"global mode changed", ""}} {
		t.Run(change.name, func(t *testing.T) {
			mode, guards, err := r.guardedMode(ctx, sn)
			if err != nil || len(guards) == 0 {
				t.Fatalf("guardedMode: %q %v %v", mode, guards, err)
			}
			probe := func() bool {
				t.Helper()
				tr, err := cli.Txn(ctx).If(guards...).Then(clientv3.OpGet("probe")).Commit()
				if err != nil {
					t.Fatal(err)
				}
				return tr.Succeeded
			}
			if !probe() {
				t.Fatal("guards fail before any change")
			}
			if _, err := r.SetMode(ctx, change.subject, ModeReadOnly, false); err != nil {
				t.Fatal(err)
			}
			if probe() {
				t.Fatal("guards still hold after the mode changed")
			}
			if _, err := r.DeleteMode(ctx, change.subject); change.subject != "" && err != nil {
				t.Fatal(err)
			}
			if change.subject == "" {
				if _, err := r.SetMode(ctx, "", ModeReadWrite, false); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
