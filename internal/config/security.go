package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kafka security protocol names, as listeners use them.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// SASL mechanism names.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// ListenerConfig is one Kafka listener.
type ListenerConfig struct {
	// Name identifies the listener (Kafka's listener name, e.g. EXTERNAL).
	// A client is told the addresses of the listener it connected to.
	// Default: the security protocol.
	Name string `yaml:"name"`
	// Addr is the host:port the listener binds.
	Addr string `yaml:"addr"`
	// AdvertisedAddr is the host:port clients are told to connect to; ""
	// means Addr (with a wildcard host replaced by 127.0.0.1).
	AdvertisedAddr string `yaml:"advertised-addr"`
	// SecurityProtocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
	SecurityProtocol string `yaml:"security-protocol"`
}

// TLS reports whether the listener speaks TLS.
func (l ListenerConfig) TLS() bool {
	return l.SecurityProtocol == ProtocolSSL || l.SecurityProtocol == ProtocolSASLSSL
}

// SASL reports whether the listener authenticates with SASL.
func (l ListenerConfig) SASL() bool {
	return l.SecurityProtocol == ProtocolSASLPlaintext || l.SecurityProtocol == ProtocolSASLSSL
}

// TLSConfig holds the broker's certificate, used by every TLS listener and,
// when set, by the HTTP listeners (which then serve HTTPS). The files are
// re-read when they change, so certificates rotate without a restart.
type TLSConfig struct {
	// CertFile is the PEM certificate chain.
	CertFile string `yaml:"cert-file"`
	// KeyFile is the PEM private key.
	KeyFile string `yaml:"key-file"`
	// ClientCAFile holds the PEM CAs that client certificates must chain to.
	ClientCAFile string `yaml:"client-ca-file"`
	// ClientAuth is none, requested or required (Kafka's ssl.client.auth).
	ClientAuth string `yaml:"client-auth"`
	// PrincipalMappingRules maps a client certificate's subject to a
	// principal name, in the syntax of Kafka's ssl.principal.mapping.rules
	// (e.g. "RULE:^CN=(.*?),.*$/$1/L,DEFAULT"). Default: the whole
	// distinguished name, "User:CN=alice,O=example".
	PrincipalMappingRules string `yaml:"principal-mapping-rules"`
}

// Enabled reports whether a certificate is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// SASLConfig configures SASL authentication on SASL_* listeners.
type SASLConfig struct {
	// Mechanisms enabled: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER.
	Mechanisms []string `yaml:"mechanisms"`
	// BootstrapUsersFile holds lines "name:password"; each user missing
	// from the credential store is created at start (SCRAM-SHA-256 and
	// SCRAM-SHA-512 credentials; PLAIN checks against them).
	BootstrapUsersFile string `yaml:"bootstrap-users-file"`
	// OAuthBearer configures the OAUTHBEARER mechanism.
	OAuthBearer OAuthBearerConfig `yaml:"oauthbearer"`
	// MaxReauth is Kafka's connections.max.reauth.ms (KIP-368): a SASL
	// session lasts at most this long before the client must
	// re-authenticate (0: no limit other than a token's expiry).
	MaxReauth time.Duration `yaml:"max-reauth"`
	// FailureDelay is how long a failed authentication waits before it is
	// answered and the connection closed (Kafka's
	// connection.failed.authentication.delay.ms).
	FailureDelay time.Duration `yaml:"failure-delay"`
	// SCRAMIterations is the iteration count of credentials the broker
	// creates itself (bootstrap users).
	SCRAMIterations int `yaml:"scram-iterations"`
}

// OAuthBearerConfig validates OAUTHBEARER tokens (JWTs).
type OAuthBearerConfig struct {
	// JWKSFile is a JSON Web Key Set file holding the signing keys.
	JWKSFile string `yaml:"jwks-file"`
	// JWKSURL is a JWKS endpoint (http or https), re-fetched every
	// JWKSRefresh and when a token names an unknown key id.
	JWKSURL string `yaml:"jwks-url"`
	// JWKSRefresh is how often the key set is re-read.
	JWKSRefresh time.Duration `yaml:"jwks-refresh"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be one of the token's aud values.
	Audience string `yaml:"audience"`
	// PrincipalClaim names the claim that becomes the principal name.
	PrincipalClaim string `yaml:"principal-claim"`
	// ClockSkew is the leeway allowed on exp, nbf and iat.
	ClockSkew time.Duration `yaml:"clock-skew"`
}

// Enabled reports whether a key source is configured.
func (o OAuthBearerConfig) Enabled() bool { return o.JWKSFile != "" || o.JWKSURL != "" }

// AuthorizationConfig configures the ACL authorizer.
type AuthorizationConfig struct {
	// Enabled turns ACL checks on. Off, every principal may do everything
	// (today's behaviour).
	Enabled bool `yaml:"enabled"`
	// SuperUsers are principals ("User:admin") allowed everything.
	SuperUsers []string `yaml:"super-users"`
	// AllowEveryoneIfNoACL is Kafka's allow.everyone.if.no.acl.found: a
	// resource that no ACL names is open to all.
	AllowEveryoneIfNoACL bool `yaml:"allow-everyone-if-no-acl"`
}

// EncryptionConfig configures envelope encryption of objects at rest.
type EncryptionConfig struct {
	// Keys are key-encryption-key URLs, newest first: file:///path (32
	// raw or base64 bytes) or a gocloud.dev secrets URL (awskms://,
	// gcpkms://, azurekeyvault://, hashivault://, base64key://). The first
	// wraps new data keys; all unwrap. Empty: no encryption.
	Keys []string `yaml:"keys"`
}

// Enabled reports whether encryption at rest is on.
func (e EncryptionConfig) Enabled() bool { return len(e.Keys) > 0 }

// KafkaListeners returns the Kafka listeners: the configured ones, or the
// single PLAINTEXT listener of kafka-addr and advertised-addr. Names
// default to the security protocol.
func (c Config) KafkaListeners() []ListenerConfig {
	if len(c.Listeners) == 0 {
		return []ListenerConfig{{Name: ProtocolPlaintext, Addr: c.KafkaAddr, AdvertisedAddr: c.AdvertisedAddr, SecurityProtocol: ProtocolPlaintext}}
	}
	out := slices.Clone(c.Listeners)
	for i := range out {
		if out[i].SecurityProtocol == "" {
			out[i].SecurityProtocol = ProtocolPlaintext
		}
		if out[i].Name == "" {
			out[i].Name = out[i].SecurityProtocol
		}
	}
	return out
}

var listenerName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validateSecurity checks listeners, tls, sasl, authorization and
// encryption.
func (c Config) validateSecurity(bad func(format string, args ...any)) {
	names := map[string]bool{}
	addrs := map[string]bool{}
	var needTLS, needSASL bool
	for i, l := range c.KafkaListeners() {
		key := fmt.Sprintf("listeners[%d]", i)
		switch l.SecurityProtocol {
		case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
		default:
			bad("%s.security-protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got %q", key, l.SecurityProtocol)
		}
		if !listenerName.MatchString(l.Name) {
			bad("%s.name %q must be letters, digits, _ or -", key, l.Name)
		}
		if names[strings.ToUpper(l.Name)] {
			bad("%s.name %q is used by another listener", key, l.Name)
		}
		names[strings.ToUpper(l.Name)] = true
		if err := validHostPort(l.Addr); err != nil {
			bad("%s.addr %q: %v", key, l.Addr, err)
		} else if addrs[l.Addr] && !strings.HasSuffix(l.Addr, ":0") {
			bad("%s.addr %q is used by another listener", key, l.Addr)
		}
		addrs[l.Addr] = true
		if l.AdvertisedAddr != "" {
			if err := validHostPort(l.AdvertisedAddr); err != nil {
				bad("%s.advertised-addr %q: %v", key, l.AdvertisedAddr, err)
			} else if host, _, _ := net.SplitHostPort(l.AdvertisedAddr); host == "" || host == "0.0.0.0" || host == "::" {
				bad("%s.advertised-addr %q must name a reachable host, not a wildcard", key, l.AdvertisedAddr)
			}
		}
		needTLS = needTLS || l.TLS()
		needSASL = needSASL || l.SASL()
	}
	if needTLS && !c.TLS.Enabled() {
		bad("tls.cert-file and tls.key-file are required by an SSL or SASL_SSL listener")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert-file and tls.key-file must be set together")
	}
	switch c.TLS.ClientAuth {
	case "", "none":
	case "requested", "required":
		if c.TLS.ClientCAFile == "" {
			bad("tls.client-auth %q needs tls.client-ca-file", c.TLS.ClientAuth)
		}
	default:
		bad("tls.client-auth must be none, requested or required, got %q", c.TLS.ClientAuth)
	}
	seen := map[string]bool{}
	for i, m := range c.SASL.Mechanisms {
		switch m {
		case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		case MechanismOAuthBearer:
			if !c.SASL.OAuthBearer.Enabled() {
				bad("sasl.mechanisms[%d] OAUTHBEARER needs sasl.oauthbearer.jwks-file or jwks-url", i)
			}
		default:
			bad("sasl.mechanisms[%d] must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER, got %q", i, m)
		}
		if seen[m] {
			bad("sasl.mechanisms[%d] %q is listed twice", i, m)
		}
		seen[m] = true
	}
	if needSASL && len(c.SASL.Mechanisms) == 0 {
		bad("sasl.mechanisms must name at least one mechanism for a SASL_PLAINTEXT or SASL_SSL listener")
	}
	if o := c.SASL.OAuthBearer; o.JWKSFile != "" && o.JWKSURL != "" {
		bad("sasl.oauthbearer: set jwks-file or jwks-url, not both")
	}
	if o := c.SASL.OAuthBearer; o.JWKSURL != "" && !strings.HasPrefix(o.JWKSURL, "http://") && !strings.HasPrefix(o.JWKSURL, "https://") {
		bad("sasl.oauthbearer.jwks-url %q must be an http or https URL", o.JWKSURL)
	}
	if c.SASL.OAuthBearer.JWKSRefresh < 0 || c.SASL.OAuthBearer.ClockSkew < 0 {
		bad("sasl.oauthbearer.jwks-refresh and clock-skew must be >= 0")
	}
	if c.SASL.MaxReauth < 0 {
		bad("sasl.max-reauth must be >= 0, got %s", c.SASL.MaxReauth)
	}
	if c.SASL.FailureDelay < 0 || c.SASL.FailureDelay > 10*time.Second {
		bad("sasl.failure-delay must be between 0 and 10s, got %s", c.SASL.FailureDelay)
	}
	if c.SASL.SCRAMIterations < 4096 || c.SASL.SCRAMIterations > 16384 {
		bad("sasl.scram-iterations must be between 4096 and 16384 (Kafka's limits), got %d", c.SASL.SCRAMIterations)
	}
	for i, u := range c.Authorization.SuperUsers {
		if typ, name, ok := strings.Cut(u, ":"); !ok || typ == "" || name == "" {
			bad("authorization.super-users[%d] %q must be a principal such as User:admin", i, u)
		}
	}
	for i, k := range c.Encryption.Keys {
		if !strings.Contains(k, "://") {
			bad("encryption.keys[%d] %q must be a URL (file:///path, awskms://, gcpkms://, azurekeyvault://, hashivault://, base64key://)", i, k)
		}
	}
}
