package faultstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// ErrInjected is wrapped by every error the store injects.
var ErrInjected = errors.New("faultstore: injected fault")

// Op names a Store method.
type Op string

// The operations a Rule can match.
const (
	OpAny      Op = ""
	OpPut      Op = "put"
	OpGet      Op = "get"
	OpGetRange Op = "getrange"
	OpDelete   Op = "delete"
	OpList     Op = "list"
)

// Crash says what a failing Put leaves behind.
type Crash int

const (
	// CrashNone is a plain error: for Put, nothing is written.
	CrashNone Crash = iota
	// CrashAfterWrite writes the object, then returns an error, as when the
	// connection drops after the upload completed.
	CrashAfterWrite
	// CrashBeforeWrite returns an error without writing, as when the process
	// dies before the upload starts. It is CrashNone spelled for Put.
	CrashBeforeWrite
)

// Rule describes one fault. A call matches a rule when Op matches (OpAny
// matches every operation) and the key (the prefix, for List) starts with
// Prefix. The first matching rule, in the order added, that has firings left
// is applied; the others are ignored for that call.
type Rule struct {
	Op     Op
	Prefix string
	// Skip lets this many matching calls through before the rule fires.
	Skip int
	// Times is how often the rule fires; 0 means forever.
	Times int
	// Latency delays the call (before anything else; a cancelled context
	// ends the wait with the context's error).
	Latency time.Duration
	// Err is the error to inject, wrapped together with ErrInjected. A rule
	// with neither Err, Crash nor Hook only adds latency.
	Err error
	// Crash selects what a failing Put leaves behind; setting it makes the
	// rule fail even without Err.
	Crash Crash
	// Hook, if set, is called when the rule fires (after Latency); a non-nil
	// result is injected as Err is. Tests use it to block or to observe.
	Hook func(ctx context.Context, op Op, key string) error
}

type rule struct {
	Rule
	id      uint64
	skipped int
	fired   int
}

// Store is the fault-injecting decorator. It is safe for concurrent use.
type Store struct {
	inner objstore.Store

	mu     sync.Mutex
	rules  []*rule
	nextID uint64
	calls  map[Op]int
}

var _ objstore.Store = (*Store)(nil)

// New wraps inner. With no rules the Store behaves exactly like inner.
func New(inner objstore.Store) *Store {
	return &Store{inner: inner, calls: map[Op]int{}}
}

// Add installs r and returns a function that removes it.
func (s *Store) Add(r Rule) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := s.nextID
	s.rules = append(s.rules, &rule{Rule: r, id: id})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, x := range s.rules {
			if x.id == id {
				s.rules = append(s.rules[:i], s.rules[i+1:]...)
				return
			}
		}
	}
}

// Clear removes every rule.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Calls returns how many times op was called (OpAny: all operations),
// faulted or not.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == OpAny {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[op]
}

// Inner returns the wrapped store.
func (s *Store) Inner() objstore.Store { return s.inner }

// match counts the call and returns the rule that fires for it, if any.
func (s *Store) match(op Op, key string) *Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	for _, r := range s.rules {
		if (r.Op != OpAny && r.Op != op) || !strings.HasPrefix(key, r.Prefix) {
			continue
		}
		if r.Times > 0 && r.fired >= r.Times {
			continue
		}
		if r.skipped < r.Skip {
			r.skipped++
			continue
		}
		r.fired++
		cp := r.Rule
		return &cp
	}
	return nil
}

// apply runs the rule's latency and hook and returns the error to inject
// (nil means "do the real call").
func apply(ctx context.Context, r *Rule, op Op, key string) error {
	if r.Latency > 0 {
		t := time.NewTimer(r.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("faultstore: %s %q: %w", op, key, ctx.Err())
		}
	}
	err := r.Err
	if r.Hook != nil {
		if herr := r.Hook(ctx, op, key); herr != nil {
			err = herr
		}
	}
	if err == nil && r.Crash != CrashNone {
		err = errors.New("crash")
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s %q: %w", ErrInjected, op, key, err)
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	r := s.match(OpPut, key)
	if r == nil {
		return s.inner.Put(ctx, key, data)
	}
	err := apply(ctx, r, OpPut, key)
	if err == nil {
		return s.inner.Put(ctx, key, data)
	}
	if r.Crash == CrashAfterWrite {
		if perr := s.inner.Put(ctx, key, data); perr != nil {
			return perr
		}
	}
	return err
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if r := s.match(OpGet, key); r != nil {
		if err := apply(ctx, r, OpGet, key); err != nil {
			return nil, err
		}
	}
	return s.inner.Get(ctx, key)
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if r := s.match(OpGetRange, key); r != nil {
		if err := apply(ctx, r, OpGetRange, key); err != nil {
			return nil, err
		}
	}
	return s.inner.GetRange(ctx, key, off, length)
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if r := s.match(OpDelete, key); r != nil {
		if err := apply(ctx, r, OpDelete, key); err != nil {
			return err
		}
	}
	return s.inner.Delete(ctx, key)
}

// List implements objstore.Store; rules match against the prefix.
func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if r := s.match(OpList, prefix); r != nil {
		if err := apply(ctx, r, OpList, prefix); err != nil {
			return err
		}
	}
	return s.inner.List(ctx, prefix, fn)
}

// Close closes the wrapped store.
func (s *Store) Close() error {
	return s.inner.Close()
}
