package objstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrInjectedFault is wrapped by every error a fault+ store injects.
var ErrInjectedFault = errors.New("objstore: injected fault")

// FaultScheme prefixes a store URL to wrap the store it names with random
// error injection (see Open). It is a testing and chaos aid, never meant for
// production data.
const FaultScheme = "fault+"

// FaultConfig is what a fault+ URL asks for: the probability, in [0, 1], that
// each call of an operation fails with an injected error before reaching the
// inner store, and the seed of the random source.
type FaultConfig struct {
	PutErrorRate    float64
	GetErrorRate    float64 // Get and GetRange
	DeleteErrorRate float64
	ListErrorRate   float64
	// Seed makes the fault sequence reproducible for one sequence of calls;
	// HasSeed false means a seed taken from the clock.
	Seed    uint64
	HasSeed bool
}

// faultParams are the query parameters a fault+ URL consumes; every other
// parameter is passed on to the inner store's URL.
var faultParams = map[string]func(c *FaultConfig, v string) error{
	"put_error_rate":    func(c *FaultConfig, v string) error { return parseRate(v, &c.PutErrorRate) },
	"get_error_rate":    func(c *FaultConfig, v string) error { return parseRate(v, &c.GetErrorRate) },
	"delete_error_rate": func(c *FaultConfig, v string) error { return parseRate(v, &c.DeleteErrorRate) },
	"list_error_rate":   func(c *FaultConfig, v string) error { return parseRate(v, &c.ListErrorRate) },
	"seed": func(c *FaultConfig, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("want an unsigned integer, got %q", v)
		}
		c.Seed, c.HasSeed = n, true
		return nil
	},
}

func parseRate(v string, dst *float64) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return fmt.Errorf("want a probability between 0 and 1, got %q", v)
	}
	*dst = f
	return nil
}

// ParseFaultURL splits a fault+ URL into its fault configuration and the
// inner store's URL (with the fault parameters removed and every other query
// parameter kept). The inner URL may be any URL Open accepts except another
// fault+ URL, including a plain directory path ("fault+/var/x?seed=1").
// Unknown parameters ending in "_rate" and repeated fault parameters are
// errors, so a misspelt rate is never silently ignored.
func ParseFaultURL(rawURL string) (FaultConfig, string, error) {
	var cfg FaultConfig
	rest, ok := strings.CutPrefix(rawURL, FaultScheme)
	if !ok {
		return cfg, "", fmt.Errorf("%w %q: not a %s URL", ErrUnsupportedURL, rawURL, FaultScheme)
	}
	if rest == "" {
		return cfg, "", fmt.Errorf("%w %q: missing inner store URL after %s", ErrUnsupportedURL, rawURL, FaultScheme)
	}
	if strings.HasPrefix(rest, FaultScheme) {
		return cfg, "", fmt.Errorf("%w %q: nested %s URLs are not supported", ErrUnsupportedURL, rawURL, FaultScheme)
	}
	base, rawQuery, _ := strings.Cut(rest, "?")
	if base == "" {
		return cfg, "", fmt.Errorf("%w %q: missing inner store URL after %s", ErrUnsupportedURL, rawURL, FaultScheme)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return cfg, "", fmt.Errorf("%w %q: query: %w", ErrUnsupportedURL, rawURL, err)
	}
	for name, vals := range q {
		set, known := faultParams[name]
		if !known {
			if strings.HasSuffix(name, "_rate") {
				return cfg, "", fmt.Errorf("%w %q: unknown fault parameter %s (want put_error_rate, get_error_rate, delete_error_rate, list_error_rate or seed)", ErrUnsupportedURL, rawURL, name)
			}
			continue
		}
		if len(vals) != 1 {
			return cfg, "", fmt.Errorf("%w %q: parameter %s given %d times", ErrUnsupportedURL, rawURL, name, len(vals))
		}
		if err := set(&cfg, vals[0]); err != nil {
			return cfg, "", fmt.Errorf("%w %q: parameter %s: %v", ErrUnsupportedURL, rawURL, name, err)
		}
		q.Del(name)
	}
	inner := base
	if len(q) > 0 {
		inner += "?" + q.Encode()
	}
	return cfg, inner, nil
}

// openFault opens the inner store of a fault+ URL and wraps it.
func openFault(ctx context.Context, rawURL string) (Store, error) {
	cfg, inner, err := ParseFaultURL(rawURL)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, inner)
	if err != nil {
		return nil, err
	}
	return NewFaultStore(s, cfg), nil
}

// FaultStore wraps a Store and fails calls at random, at the rates of its
// FaultConfig. An injected failure happens before the inner store is called,
// so a failed Put stores nothing and a failed Delete deletes nothing. It is
// safe for concurrent use. Tests that need scripted faults use
// internal/objstore/faultstore instead.
type FaultStore struct {
	inner Store
	cfg   FaultConfig

	mu       sync.Mutex
	rng      *rand.Rand
	injected map[string]int
	calls    map[string]int
}

var _ Store = (*FaultStore)(nil)

// NewFaultStore wraps inner with the faults cfg asks for.
func NewFaultStore(inner Store, cfg FaultConfig) *FaultStore {
	seed := cfg.Seed
	if !cfg.HasSeed {
		seed = uint64(time.Now().UnixNano())
	}
	return &FaultStore{
		inner:    inner,
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(seed, 0x72756e6e656c)),
		injected: map[string]int{},
		calls:    map[string]int{},
	}
}

// Injected returns how many calls of op ("put", "get", "getrange",
// "delete", "list") failed with an injected error.
func (s *FaultStore) Injected(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.injected[op]
}

// Calls returns how many calls of op were made, failed or not.
func (s *FaultStore) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Inner returns the wrapped store.
func (s *FaultStore) Inner() Store { return s.inner }

// fault decides whether this call of op fails. Keys are checked first, so
// an invalid key is always reported as such (Store's contract).
func (s *FaultStore) fault(op, key string, rate float64) error {
	if op != "list" {
		if err := ValidateKey(key); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if rate <= 0 || s.rng.Float64() >= rate {
		return nil
	}
	s.injected[op]++
	return fmt.Errorf("%w: %s %q", ErrInjectedFault, op, key)
}

// Put implements Store.
func (s *FaultStore) Put(ctx context.Context, key string, data []byte) error {
	if err := s.fault("put", key, s.cfg.PutErrorRate); err != nil {
		return err
	}
	return s.inner.Put(ctx, key, data)
}

// Get implements Store.
func (s *FaultStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.fault("get", key, s.cfg.GetErrorRate); err != nil {
		return nil, err
	}
	return s.inner.Get(ctx, key)
}

// GetRange implements Store.
func (s *FaultStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := s.fault("getrange", key, s.cfg.GetErrorRate); err != nil {
		return nil, err
	}
	return s.inner.GetRange(ctx, key, off, length)
}

// Delete implements Store.
func (s *FaultStore) Delete(ctx context.Context, key string) error {
	if err := s.fault("delete", key, s.cfg.DeleteErrorRate); err != nil {
		return err
	}
	return s.inner.Delete(ctx, key)
}

// List implements Store.
func (s *FaultStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := s.fault("list", prefix, s.cfg.ListErrorRate); err != nil {
		return err
	}
	return s.inner.List(ctx, prefix, fn)
}

// Close closes the wrapped store.
func (s *FaultStore) Close() error { return s.inner.Close() }
