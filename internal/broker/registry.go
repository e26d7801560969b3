package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// startRegistry serves the schema registry's REST API on its own listener
// (registry-addr), with its state in this broker's etcd.
func (b *Broker) startRegistry() error {
	reg, err := registry.New(registry.Options{
		Client:  b.cli,
		Formats: []registry.Format{avro.New(), protobuf.New(), jsonschema.New()},
		Logger:  b.log.With("component", "registry"),
	})
	if err != nil {
		return fmt.Errorf("broker: schema registry: %w", err)
	}
	ln, err := net.Listen("tcp", b.cfg.RegistryAddr)
	if err != nil {
		reg.Close()
		return fmt.Errorf("broker: registry listener: %w", err)
	}
	b.schemas, b.registryLn = reg, ln
	b.registrySrv = &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.registrySrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("broker: registry server stopped", "err", err)
		}
	}()
	return nil
}

// stopRegistry stops the registry's listener and the registry.
func (b *Broker) stopRegistry() error {
	if b.registrySrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b.registrySrv.Shutdown(ctx)
		cancel()
	}
	if b.schemas != nil {
		return b.schemas.Close()
	}
	return nil
}

// RegistryAddr is the bound schema registry listener address.
func (b *Broker) RegistryAddr() string { return b.registryLn.Addr().String() }

// Schemas exposes the schema registry (tests and tools).
func (b *Broker) Schemas() *registry.Registry { return b.schemas }
