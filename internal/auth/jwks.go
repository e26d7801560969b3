package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/runnel-dev/runnel/internal/config"
)

// Limits of the key set source.
const (
	// jwksMaxBytes bounds a key set document.
	jwksMaxBytes = 1 << 20
	// jwksMinRefetch is the least time between two fetches of a JWKS URL
	// caused by tokens naming unknown key ids, so a client cannot make the
	// broker hammer the identity provider.
	jwksMinRefetch = 10 * time.Second
)

func newTokenValidator(ctx context.Context, cfg config.OAuthBearerConfig, hc *http.Client, now func() time.Time, log *slog.Logger) (*tokenValidator, error) {
	ks := &keySource{
		file:    cfg.JWKSFile,
		url:     cfg.JWKSURL,
		refresh: cfg.JWKSRefresh,
		http:    hc,
		now:     now,
		log:     log,
		done:    make(chan struct{}),
	}
	if ks.file != "" {
		if err := ks.reloadFile(); err != nil {
			return nil, err
		}
	} else if err := ks.fetch(ctx); err != nil {
		// The identity provider may come up after the broker: tokens fail
		// until a fetch succeeds.
		log.Warn("auth: cannot fetch the OAUTHBEARER key set yet", "url", ks.url, "err", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	ks.cancel = cancel
	go ks.run(rctx)
	return &tokenValidator{cfg: cfg, keys: ks, now: now}, nil
}

// keySource holds the key set tokens are verified against, from a JWKS
// file (re-read when its size or modification time changes, checked on
// use and every refresh) or a JWKS URL (fetched every refresh, and again
// when a token names an unknown key id, at most every jwksMinRefetch).
type keySource struct {
	file, url string
	refresh   time.Duration
	http      *http.Client
	now       func() time.Time
	log       *slog.Logger

	fetchMu   sync.Mutex // one fetch at a time
	mu        sync.Mutex
	set       jose.JSONWebKeySet
	fileStamp fileStamp
	lastFetch time.Time // last fetch attempt, on now's clock

	cancel context.CancelFunc
	done   chan struct{}
}

func (ks *keySource) close() {
	ks.cancel()
	<-ks.done
}

// run refreshes the key set every refresh until ctx ends.
func (ks *keySource) run(ctx context.Context) {
	defer close(ks.done)
	if ks.refresh <= 0 {
		return
	}
	t := time.NewTicker(ks.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if ks.file != "" {
			err = ks.reloadFile()
		} else {
			err = ks.fetch(ctx)
		}
		if err != nil && ctx.Err() == nil {
			ks.log.Warn("auth: refreshing the OAUTHBEARER key set failed; keeping the previous one", "err", err)
		}
	}
}

// candidates returns the keys that may have signed a token with key id
// kid: the keys with that id, or every key when the token names none.
func (ks *keySource) candidates(ctx context.Context, kid string) []jose.JSONWebKey {
	if ks.file != "" {
		if err := ks.reloadFile(); err != nil {
			ks.log.Warn("auth: re-reading the OAUTHBEARER key set failed; keeping the previous one", "err", err)
		}
	}
	keys := ks.lookup(kid)
	if len(keys) == 0 && ks.url != "" && ks.mayRefetch() {
		if err := ks.fetch(ctx); err != nil {
			ks.log.Warn("auth: fetching the OAUTHBEARER key set for an unknown key id failed", "kid", kid, "err", err)
		}
		keys = ks.lookup(kid)
	}
	return keys
}

func (ks *keySource) lookup(kid string) []jose.JSONWebKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if kid == "" {
		return ks.set.Keys
	}
	return ks.set.Key(kid)
}

// mayRefetch reports whether an unknown key id may cause a fetch now.
func (ks *keySource) mayRefetch() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.lastFetch.IsZero() || ks.now().Sub(ks.lastFetch) >= jwksMinRefetch
}

// reloadFile re-reads the JWKS file when it changed.
func (ks *keySource) reloadFile() error {
	st, err := stamp(ks.file)
	if err != nil {
		return fmt.Errorf("auth: OAUTHBEARER key set %s: %w", ks.file, err)
	}
	ks.mu.Lock()
	same := st == ks.fileStamp
	ks.mu.Unlock()
	if same {
		return nil
	}
	if st.size > jwksMaxBytes {
		return fmt.Errorf("auth: OAUTHBEARER key set %s is larger than %d bytes", ks.file, jwksMaxBytes)
	}
	b, err := os.ReadFile(ks.file)
	if err != nil {
		return fmt.Errorf("auth: OAUTHBEARER key set: %w", err)
	}
	set, err := ks.parse(b)
	if err != nil {
		return fmt.Errorf("auth: OAUTHBEARER key set %s: %w", ks.file, err)
	}
	ks.mu.Lock()
	ks.set, ks.fileStamp = set, st
	ks.mu.Unlock()
	return nil
}

// fetch reads the JWKS URL.
func (ks *keySource) fetch(ctx context.Context) error {
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()
	ks.mu.Lock()
	ks.lastFetch = ks.now()
	ks.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return fmt.Errorf("auth: OAUTHBEARER key set URL: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.http.Do(req)
	if err != nil {
		return fmt.Errorf("auth: fetch OAUTHBEARER key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("auth: fetch OAUTHBEARER key set %s: %s", ks.url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return fmt.Errorf("auth: fetch OAUTHBEARER key set: %w", err)
	}
	if len(b) > jwksMaxBytes {
		return fmt.Errorf("auth: OAUTHBEARER key set %s is larger than %d bytes", ks.url, jwksMaxBytes)
	}
	set, err := ks.parse(b)
	if err != nil {
		return fmt.Errorf("auth: OAUTHBEARER key set %s: %w", ks.url, err)
	}
	ks.mu.Lock()
	ks.set = set
	ks.mu.Unlock()
	return nil
}

// parse reads a JWKS document key by key: a key of a type go-jose does
// not know (an identity provider may publish encryption keys beside the
// signing ones) is skipped, not fatal.
func (ks *keySource) parse(b []byte) (jose.JSONWebKeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("not a JWKS document: %w", err)
	}
	var set jose.JSONWebKeySet
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			ks.log.Warn("auth: skipping an unreadable key in the OAUTHBEARER key set", "index", i, "err", err)
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return jose.JSONWebKeySet{}, fmt.Errorf("no usable keys")
	}
	return set, nil
}
