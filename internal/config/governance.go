package config

import (
	"fmt"
	"net/url"
	"time"
)

// GovernanceConfig configures the data-product services: observed
// lineage and its OpenLineage export, access requests and the portal.
type GovernanceConfig struct {
	Lineage LineageConfig `yaml:"lineage"`
	Access  AccessConfig  `yaml:"access"`
	Portal  PortalConfig  `yaml:"portal"`
}

// LineageConfig configures lineage observed from the Kafka traffic.
type LineageConfig struct {
	// Enabled, when false, observes no traffic. Default true.
	Enabled *bool `yaml:"enabled"`
	// Retention is how long an edge nobody used is kept. 0 means 7 days.
	Retention time.Duration `yaml:"retention"`
	// OpenLineage exports run events; off without a URL.
	OpenLineage OpenLineageConfig `yaml:"openlineage"`
}

// OpenLineageConfig configures the OpenLineage export.
type OpenLineageConfig struct {
	// URL is the HTTP endpoint events are POSTed to (Marquez:
	// http://host:5000/api/v1/lineage); empty turns the export off.
	URL string `yaml:"url"`
	// Namespace is the namespace of the jobs; empty means "runnel".
	Namespace string `yaml:"namespace"`
	// Interval is the time between exports. 0 means 1 minute.
	Interval time.Duration `yaml:"interval"`
}

// AccessConfig configures access requests.
type AccessConfig struct {
	// FourEyes, when true (the default), refuses the approval of a
	// request by its own requester, administrators included.
	FourEyes *bool `yaml:"four-eyes"`
}

// PortalConfig configures the web portal at / on the HTTP listener.
type PortalConfig struct {
	// Enabled, when false, serves no portal (the API stays). Default true.
	Enabled *bool `yaml:"enabled"`
	// SessionTTL bounds a portal login. 0 means 8 hours.
	SessionTTL time.Duration `yaml:"session-ttl"`
}

// LineageOn reports whether lineage is observed.
func (l LineageConfig) LineageOn() bool { return l.Enabled == nil || *l.Enabled }

// RetentionOrDefault is Retention, or 7 days when 0.
func (l LineageConfig) RetentionOrDefault() time.Duration {
	if l.Retention == 0 {
		return 7 * 24 * time.Hour
	}
	return l.Retention
}

// IntervalOrDefault is Interval, or 1 minute when 0.
func (o OpenLineageConfig) IntervalOrDefault() time.Duration {
	if o.Interval == 0 {
		return time.Minute
	}
	return o.Interval
}

// NamespaceOrDefault is Namespace, or "runnel" when empty.
func (o OpenLineageConfig) NamespaceOrDefault() string {
	if o.Namespace == "" {
		return "runnel"
	}
	return o.Namespace
}

// FourEyesOn reports whether requesters may not approve their own requests.
func (a AccessConfig) FourEyesOn() bool { return a.FourEyes == nil || *a.FourEyes }

// PortalOn reports whether the portal is served.
func (p PortalConfig) PortalOn() bool { return p.Enabled == nil || *p.Enabled }

// SessionTTLOrDefault is SessionTTL, or 8 hours when 0.
func (p PortalConfig) SessionTTLOrDefault() time.Duration {
	if p.SessionTTL == 0 {
		return 8 * time.Hour
	}
	return p.SessionTTL
}

// Validate checks the governance keys.
func (g GovernanceConfig) Validate() error {
	if r := g.Lineage.Retention; r != 0 && r < time.Minute {
		return fmt.Errorf("config: governance.lineage.retention must be at least 1m, got %s", r)
	}
	ol := g.Lineage.OpenLineage
	if ol.URL != "" {
		u, err := url.Parse(ol.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: governance.lineage.openlineage.url must be an http:// or https:// URL, got %q", ol.URL)
		}
	}
	if i := ol.Interval; i != 0 && i < time.Second {
		return fmt.Errorf("config: governance.lineage.openlineage.interval must be at least 1s, got %s", i)
	}
	if t := g.Portal.SessionTTL; t != 0 && (t < time.Minute || t > 30*24*time.Hour) {
		return fmt.Errorf("config: governance.portal.session-ttl must be between 1m and 720h, got %s", t)
	}
	return nil
}
