// Package clientmetricstest gives tests of the KIP-714 front end a client
// metrics manager whose subscriptions live in memory (brokers keep them in
// etcd).
package clientmetricstest

import (
	"context"
	"sync"

	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
)

// Memory is a clientmetrics.Manager whose Store keeps subscriptions in a
// map and applies them at once.
type Memory struct {
	*clientmetrics.Manager
	mu   sync.Mutex
	subs map[string]map[string]string
}

// New returns a Memory over a new Manager with opts.
func New(opts clientmetrics.Options) *Memory {
	return &Memory{Manager: clientmetrics.New(opts), subs: map[string]map[string]string{}}
}

// Store sets (configs nil: deletes) subscription name and applies the
// whole set to the Manager.
func (m *Memory) Store(_ context.Context, name string, configs map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if configs == nil {
		delete(m.subs, name)
	} else {
		m.subs[name] = configs
	}
	var subs []clientmetrics.Subscription
	for n, c := range m.subs {
		s, err := clientmetrics.ParseSubscription(n, c)
		if err != nil {
			return err
		}
		subs = append(subs, s)
	}
	m.SetSubscriptions(subs)
	return nil
}
