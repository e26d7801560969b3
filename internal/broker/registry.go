package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
	"github.com/runnel-dev/runnel/internal/registry/rules"
)

// openRegistry opens the schema registry on this broker's etcd, with the
// Avro, Protobuf and JSON Schema formats.
func (b *Broker) openRegistry() error {
	eng, err := rules.NewEngine(rules.Options{Logger: b.log.With("component", "rules")})
	if err != nil {
		return fmt.Errorf("broker: data contract rules: %w", err)
	}
	reg, err := registry.New(registry.Options{
		Client:        b.cli,
		Formats:       []registry.Format{avro.New(), protobuf.New(), jsonschema.New()},
		Logger:        b.log.With("component", "registry"),
		ValidateRules: celRulesCompile(eng),
	})
	if err != nil {
		return fmt.Errorf("broker: schema registry: %w", err)
	}
	b.schemas, b.ruleEngine = reg, eng
	return nil
}

// startRegistry serves the schema registry's REST API on its own listener
// (registry-addr): over HTTPS when tls is configured, every request
// authenticated and authorized through the topics' ACLs when security is
// (httpauth.go).
func (b *Broker) startRegistry() error {
	ln, err := b.listenHTTP(b.cfg.RegistryAddr)
	if err != nil {
		return fmt.Errorf("broker: registry listener: %w", err)
	}
	b.registryLn = ln
	h := b.schemas.Handler()
	if g := b.httpGuard(); g != nil {
		h = g.Authenticate(b.schemas.SecureHandler(g))
	}
	b.registrySrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.registrySrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("broker: registry server stopped", "err", err)
		}
	}()
	return nil
}

// stopRegistryListener stops serving the registry's REST API; the registry
// itself stays open for produce validation until the engine has closed.
func (b *Broker) stopRegistryListener() {
	if b.registrySrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b.registrySrv.Shutdown(ctx)
		cancel()
	}
}

// RegistryAddr is the bound schema registry listener address.
func (b *Broker) RegistryAddr() string { return b.registryLn.Addr().String() }

// Schemas exposes the schema registry (tests and tools).
func (b *Broker) Schemas() *registry.Registry { return b.schemas }

// celRulesCompile returns a registry rule-set check that compiles the CEL
// and CEL_FIELD rules the broker evaluates; rules of other types (those
// clients run, e.g. encryption or JSONata migrations) are stored verbatim.
func celRulesCompile(eng *rules.Engine) func(*registry.RuleSet) error {
	return func(rs *registry.RuleSet) error {
		for _, list := range [][]registry.Rule{rs.DomainRules, rs.MigrationRules} {
			for _, r := range list {
				if r.Type != "CEL" && r.Type != "CEL_FIELD" {
					continue
				}
				if err := eng.Validate(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
}
