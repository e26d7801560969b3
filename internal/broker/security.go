package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/protocol"
)

// security is the broker's authentication and authorization state: the
// SCRAM credentials, the ACLs and the client quotas (all cached from etcd),
// the SASL mechanisms and the authorizer. Fields are nil when not
// configured.
type security struct {
	creds  *auth.Credentials
	sasl   *auth.Authenticator
	acls   *auth.ACLStore
	authz  *auth.Authorizer
	quotas *auth.Quotas
}

// openSecurity loads what the configuration enables. The credential store
// is always open (users can be managed before a SASL listener uses them);
// bootstrap users are created once, when missing.
func (b *Broker) openSecurity(ctx context.Context) error {
	cfg := b.cfg
	var err error
	b.sec.creds, err = auth.NewCredentials(ctx, auth.CredentialsOptions{Client: b.cli, Logger: b.log.With("component", "auth")})
	if err != nil {
		return fmt.Errorf("broker: SCRAM credentials: %w", err)
	}
	if f := cfg.SASL.BootstrapUsersFile; f != "" {
		created, err := auth.Bootstrap(ctx, b.sec.creds, f, cfg.SASL.SCRAMIterations)
		if err != nil {
			return fmt.Errorf("broker: sasl.bootstrap-users-file: %w", err)
		}
		if len(created) > 0 {
			b.log.Info("broker: created bootstrap users", "users", created)
		}
	}
	if len(cfg.SASL.Mechanisms) > 0 {
		b.sec.sasl, err = auth.NewAuthenticator(ctx, auth.AuthenticatorOptions{
			Credentials: b.sec.creds, Config: cfg.SASL, Logger: b.log.With("component", "auth"),
		})
		if err != nil {
			return fmt.Errorf("broker: sasl: %w", err)
		}
	}
	// Quotas are always served: DescribeClientQuotas and AlterClientQuotas
	// work on any broker, and a quota applies once it is set.
	b.sec.quotas = auth.NewQuotas(auth.QuotaOptions{Client: b.cli, BrokerID: cfg.BrokerID, Logger: b.log.With("component", "quota")})
	if err := b.sec.quotas.Start(ctx); err != nil {
		return fmt.Errorf("broker: quotas: %w", err)
	}
	if cfg.Authorization.Enabled {
		b.sec.acls, err = auth.OpenACLStore(ctx, b.cli, "", b.log.With("component", "acl"))
		if err != nil {
			return fmt.Errorf("broker: ACLs: %w", err)
		}
		b.sec.authz = auth.NewAuthorizer(cfg.Authorization, b.sec.acls)
	}
	return nil
}

// protocolOptions sets the Kafka front end's security options.
func (s *security) protocolOptions(o *protocol.Options, failureDelay, maxReauth time.Duration) {
	o.SCRAM = s.creds
	o.Quotas = s.quotas
	if s.sasl != nil {
		o.SASL = saslAdapter{s.sasl}
	}
	o.SASLFailureDelay, o.MaxReauth = failureDelay, maxReauth
	if s.authz != nil {
		o.Authorizer = s.authz
	}
}

// close releases the watches.
func (s *security) close() []error {
	var errs []error
	if s.quotas != nil {
		errs = append(errs, s.quotas.Close())
	}
	if s.sasl != nil {
		errs = append(errs, s.sasl.Close())
	}
	if s.acls != nil {
		errs = append(errs, s.acls.Close())
	}
	if s.creds != nil {
		errs = append(errs, s.creds.Close())
	}
	return errs
}

// saslAdapter serves protocol.Authenticator with auth's Authenticator
// (whose exchanges are auth.Exchange values).
type saslAdapter struct{ a *auth.Authenticator }

func (s saslAdapter) Mechanisms() []string { return s.a.Mechanisms() }

func (s saslAdapter) Start(mechanism string) (protocol.SASLExchange, error) {
	return s.a.Start(mechanism)
}
