package config

import (
	"strings"
	"testing"
	"time"
)

func TestGovernanceValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    GovernanceConfig
		want string // substring of the error; "" = valid
	}{
		{name: "defaults"},
		{name: "openlineage url", g: GovernanceConfig{Lineage: LineageConfig{OpenLineage: OpenLineageConfig{URL: "http://127.0.0.1:5000/api/v1/lineage"}}}},
		{name: "not http", g: GovernanceConfig{Lineage: LineageConfig{OpenLineage: OpenLineageConfig{URL: "ftp://x"}}}, want: "governance.lineage.openlineage.url"},
		{name: "short retention", g: GovernanceConfig{Lineage: LineageConfig{Retention: time.Second}}, want: "governance.lineage.retention"},
		{name: "short interval", g: GovernanceConfig{Lineage: LineageConfig{OpenLineage: OpenLineageConfig{Interval: time.Millisecond}}}, want: "interval"},
		{name: "long session", g: GovernanceConfig{Portal: PortalConfig{SessionTTL: 1000 * time.Hour}}, want: "governance.portal.session-ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}
	var g GovernanceConfig
	if !g.Lineage.LineageOn() || !g.Access.FourEyesOn() || !g.Portal.PortalOn() {
		t.Fatal("lineage, four-eyes and the portal are on by default")
	}
}
