package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
)

// ErrTLSConfig means the certificate, key or CA files are unusable.
var ErrTLSConfig = errors.New("auth: tls")

// reloadCheckInterval bounds how often the certificate files are checked
// for changes (one stat of each file per interval, on a handshake).
const reloadCheckInterval = time.Second

// ServerTLS is the broker's TLS server configuration. The certificate, key
// and client CA files are re-read when they change (checked at most once a
// second, on a handshake), so certificates rotate without a restart; a
// rotation that fails to load keeps the previous certificate and logs why.
// It is safe for concurrent use.
type ServerTLS struct {
	cfg    config.TLSConfig
	log    *slog.Logger
	mapper *PrincipalMapper
	now    func() time.Time

	mu        sync.Mutex
	current   *tls.Config // what handshakes use now
	stamps    []fileStamp // of cert, key and CA files as last loaded
	lastCheck time.Time
}

// fileStamp identifies a version of a file well enough to notice a change.
type fileStamp struct {
	path    string
	size    int64
	modTime time.Time
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{path: path, size: fi.Size(), modTime: fi.ModTime()}, nil
}

// NewServerTLS loads cfg's certificate, key and client CAs. Errors wrap
// ErrTLSConfig and name the file.
func NewServerTLS(cfg config.TLSConfig, log *slog.Logger) (*ServerTLS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mapper, err := NewPrincipalMapper(cfg.PrincipalMappingRules)
	if err != nil {
		return nil, fmt.Errorf("%w: principal-mapping-rules: %w", ErrTLSConfig, err)
	}
	s := &ServerTLS{cfg: cfg, log: log, mapper: mapper, now: time.Now}
	c, stamps, err := s.load()
	if err != nil {
		return nil, err
	}
	s.current, s.stamps, s.lastCheck = c, stamps, s.now()
	return s, nil
}

func (s *ServerTLS) files() []string {
	f := []string{s.cfg.CertFile, s.cfg.KeyFile}
	if s.cfg.ClientCAFile != "" {
		f = append(f, s.cfg.ClientCAFile)
	}
	return f
}

// load reads the files into a fresh tls.Config.
func (s *ServerTLS) load() (*tls.Config, []fileStamp, error) {
	var stamps []fileStamp
	for _, f := range s.files() {
		st, err := stamp(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrTLSConfig, err)
		}
		stamps = append(stamps, st)
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cert-file %s, key-file %s: %w", ErrTLSConfig, s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
	}
	if s.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(s.cfg.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: client-ca-file: %w", ErrTLSConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%w: client-ca-file %s holds no PEM certificate", ErrTLSConfig, s.cfg.ClientCAFile)
		}
		c.ClientCAs = pool
		switch s.cfg.ClientAuth {
		case "requested":
			c.ClientAuth = tls.VerifyClientCertIfGiven
		case "required":
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c, stamps, nil
}

// Config returns a tls.Config for a listener: every handshake uses the
// newest loaded certificate and CAs.
func (s *ServerTLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.config(), nil
		},
	}
}

// config returns the current configuration, reloading it first when a file
// changed since it was loaded.
func (s *ServerTLS) config() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastCheck) < reloadCheckInterval {
		return s.current
	}
	s.lastCheck = now
	changed := false
	for _, old := range s.stamps {
		st, err := stamp(old.path)
		if err != nil || st != old {
			changed = true
			break
		}
	}
	if !changed {
		return s.current
	}
	c, stamps, err := s.load()
	if err != nil {
		// Files are often replaced one at a time: keep serving the old
		// pair and try again on a later handshake.
		s.log.Warn("auth: reloading TLS files failed; keeping the previous certificate", "err", err)
		return s.current
	}
	s.current, s.stamps = c, stamps
	s.log.Info("auth: TLS certificate reloaded", "cert_file", s.cfg.CertFile)
	return s.current
}

// Principal returns the principal of a handshake's verified client
// certificate, mapped by the principal mapping rules. ok is false when the
// client sent no certificate (the connection is then anonymous), and err
// is set when no rule maps the subject.
func (s *ServerTLS) Principal(state tls.ConnectionState) (p Principal, ok bool, err error) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Principal{}, false, nil
	}
	name, err := s.mapper.Map(state.VerifiedChains[0][0].Subject.String())
	if err != nil {
		return Principal{}, false, err
	}
	return User(name), true, nil
}
