package broker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/access"
)

// govAccess is the broker's access part of governance (governance.go):
// access requests and the grants they become, shares, and the audit log
// every part records to (govAuditor).
type govAccess struct {
	svc *access.Service
	// acls is the ACL store opened here when authorization is off (and
	// security.go opened none): approvals still record their bindings,
	// which apply once authorization is turned on.
	acls *auth.ACLStore
	// owners answers who owns a product: the catalog, once set; until
	// then no product has an owner and only administrators approve.
	owners productOwners
}

func (b *Broker) openAccess(ctx context.Context) error {
	acls := b.sec.acls
	if acls == nil {
		var err error
		if acls, err = auth.OpenACLStore(ctx, b.cli, "", b.log.With("component", "acl")); err != nil {
			return err
		}
		b.gov.access.acls = acls
	}
	o := access.Options{
		Client: b.cli,
		Owners: &b.gov.access.owners,
		ACLs:   acls,
		TopicExists: func(topic string) bool {
			_, ok := b.engine.Topic(topic)
			return ok
		},
		Connection:      b.shareConnection,
		FourEyes:        b.cfg.Governance.Access.FourEyesOn(),
		SCRAMIterations: b.cfg.SASL.SCRAMIterations,
		Logger:          b.log.With("component", "access"),
	}
	if b.sec.creds != nil {
		o.Credentials = b.sec.creds
	}
	if b.sec.quotas != nil {
		o.Quotas = b.sec.quotas
	}
	svc, err := access.Open(ctx, o)
	if err != nil {
		return err
	}
	b.gov.access.svc = svc
	return nil
}

func (b *Broker) mountAccess(mux *http.ServeMux, g *auth.Guard) {
	if b.gov.access.svc == nil {
		return // a broker started without governance (HTTP tests)
	}
	b.gov.access.svc.Mount(mux, func(h http.Handler) http.Handler { return govAuthenticated(g, h) }, b.govAuthorizer())
}

func (b *Broker) closeAccess() error {
	var errs []error
	if b.gov.access.svc != nil {
		errs = append(errs, b.gov.access.svc.Close())
	}
	if b.gov.access.acls != nil {
		errs = append(errs, b.gov.access.acls.Close())
	}
	return errors.Join(errs...)
}

// govAuditor is the audit log the governance parts record to. It may be
// handed out before openAccess ran (the catalog opens first): it reaches
// the log when an event is recorded.
func (b *Broker) govAuditor() governance.Auditor { return brokerAuditor{b} }

type brokerAuditor struct{ b *Broker }

func (a brokerAuditor) Record(ctx context.Context, e governance.Event) error {
	if a.b.gov.access.svc == nil {
		return errors.New("broker: the audit log is not open")
	}
	return a.b.gov.access.svc.Audit().Record(ctx, e)
}

// productOwners is the governance.Owners access requests and shares ask:
// the one set (the catalog), or nobody owning anything.
type productOwners struct {
	p atomic.Pointer[governance.Owners]
}

func (o *productOwners) set(owners governance.Owners) { o.p.Store(&owners) }

func (o *productOwners) Owner(ctx context.Context, topic string) (string, bool, error) {
	if p := o.p.Load(); p != nil && *p != nil {
		return (*p).Owner(ctx, topic)
	}
	return "", false, nil
}

func (o *productOwners) Owns(ctx context.Context, topic string, p auth.Principal) (bool, error) {
	if q := o.p.Load(); q != nil && *q != nil {
		return (*q).Owns(ctx, topic, p)
	}
	return false, nil
}

// shareConnection is how a share's recipient connects: the first SASL
// listener (with SCRAM enabled) of every live broker, and this broker's
// schema registry.
func (b *Broker) shareConnection() (access.Connection, bool) {
	if !slices.Contains(b.cfg.SASL.Mechanisms, config.MechanismSCRAMSHA512) {
		return access.Connection{}, false
	}
	var lc config.ListenerConfig
	for _, kl := range b.listeners {
		if kl.cfg.SASL() {
			lc = kl.cfg
			break
		}
	}
	if lc.Name == "" {
		return access.Connection{}, false
	}
	var addrs []string
	host := "127.0.0.1"
	for _, br := range b.cluster.Brokers() {
		for _, ep := range br.Endpoints {
			if ep.Listener == lc.Name {
				addrs = append(addrs, net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port))))
			}
		}
	}
	for _, ep := range b.cluster.Self().Endpoints {
		if ep.Listener == lc.Name {
			host = ep.Host
			if len(addrs) == 0 {
				addrs = append(addrs, net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port))))
			}
		}
	}
	c := access.Connection{BootstrapServers: strings.Join(addrs, ","), SecurityProtocol: lc.SecurityProtocol}
	if b.registryLn != nil {
		scheme := "http"
		if b.cfg.TLS.Enabled() {
			scheme = "https"
		}
		_, port, _ := net.SplitHostPort(b.RegistryAddr())
		rh, _, _ := net.SplitHostPort(b.cfg.RegistryAddr)
		if rh == "" || rh == "0.0.0.0" || rh == "::" {
			rh = host
		}
		c.SchemaRegistryURL = scheme + "://" + net.JoinHostPort(rh, port)
	}
	return c, true
}
