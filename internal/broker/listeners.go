package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/protocol"
)

// kafkaListener is one bound Kafka listener.
type kafkaListener struct {
	cfg   config.ListenerConfig
	ln    net.Listener
	proto protocol.Listener
}

// openListeners binds every Kafka listener and describes how each
// authenticates its clients. The TLS ones share the broker's reloading
// certificate.
func (b *Broker) openListeners() error {
	for _, lc := range b.cfg.KafkaListeners() {
		ln, err := net.Listen("tcp", lc.Addr)
		if err != nil {
			return fmt.Errorf("broker: listener %s (%s): %w", lc.Name, lc.Addr, err)
		}
		kl := kafkaListener{cfg: lc, ln: ln, proto: protocol.Listener{Name: lc.Name, SASL: lc.SASL()}}
		if lc.TLS() {
			kl.proto.TLS = b.tls.Config()
			kl.proto.TLSPrincipal = b.tls.Principal
		}
		b.listeners = append(b.listeners, kl)
	}
	return nil
}

// serveListeners serves every Kafka listener until the server closes.
func (b *Broker) serveListeners() {
	for _, kl := range b.listeners {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.server.ServeListener(context.Background(), kl.ln, kl.proto); err != nil &&
				!errors.Is(err, net.ErrClosed) && !errors.Is(err, protocol.ErrServerClosed) {
				b.log.Error("broker: kafka listener stopped", "listener", kl.cfg.Name, "err", err)
			}
		}()
	}
}

// closeListeners closes listeners the server never served.
func (b *Broker) closeListeners() {
	for _, kl := range b.listeners {
		kl.ln.Close()
	}
}

// advertised is this broker as clients see it: the first listener's
// address, and every listener's as an endpoint.
func advertised(cfg config.Config, listeners []kafkaListener) (protocol.Broker, error) {
	b := protocol.Broker{NodeID: cfg.BrokerID}
	if cfg.Rack != "" {
		rack := cfg.Rack
		b.Rack = &rack
	}
	for i, kl := range listeners {
		addr := kl.cfg.AdvertisedAddr
		if addr == "" {
			addr = kl.cfg.Addr
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return protocol.Broker{}, fmt.Errorf("broker: listener %s advertised address %q: %w", kl.cfg.Name, addr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port == 0 {
			port = kl.ln.Addr().(*net.TCPAddr).Port
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		if i == 0 {
			b.Host, b.Port = host, int32(port)
		}
		b.Endpoints = append(b.Endpoints, protocol.Endpoint{Listener: kl.cfg.Name, Host: host, Port: int32(port)})
	}
	return b, nil
}

// ListenerAddr is the bound address of the named Kafka listener, or "".
func (b *Broker) ListenerAddr(name string) string {
	for _, kl := range b.listeners {
		if kl.cfg.Name == name {
			return kl.ln.Addr().String()
		}
	}
	return ""
}

// openTLS loads the broker certificate when one is configured.
func (b *Broker) openTLS() error {
	if !b.cfg.TLS.Enabled() {
		return nil
	}
	t, err := auth.NewServerTLS(b.cfg.TLS, b.log)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.tls = t
	return nil
}

// listenerAddrs renders the bound listeners for the start-up log line.
func (b *Broker) listenerAddrs() []string {
	var out []string
	for _, kl := range b.listeners {
		out = append(out, kl.cfg.Name+"://"+kl.ln.Addr().String()+" ("+kl.cfg.SecurityProtocol+")")
	}
	return out
}
