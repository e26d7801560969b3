package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
)

// Environment variables that set the defaults of the security flags.
const (
	envSASLMechanism = "RUNNEL_SASL_MECHANISM"
	envSASLUser      = "RUNNEL_SASL_USER"
	envSASLPassword  = "RUNNEL_SASL_PASSWORD"
	envTLSCA         = "RUNNEL_TLS_CA"
)

// securityOptions are the TLS and SASL flags of every client command; the
// same credentials authenticate to the schema registry (HTTP Basic with the
// user and password, or the bearer token).
type securityOptions struct {
	tls           bool
	caFile        string
	certFile      string
	keyFile       string
	serverName    string
	insecure      bool
	mechanism     string
	user          string
	passwordEnv   string
	passwordStdin bool
	tokenFile     string

	stdin    io.Reader
	password *string // read once
}

func (o *securityOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.tls, "tls", false, "connect with TLS (implied by the other --tls-* flags)")
	fs.StringVar(&o.caFile, "tls-ca", os.Getenv(envTLSCA), "PEM file of the CAs that sign the brokers' (and registry's) certificates; env "+envTLSCA)
	fs.StringVar(&o.certFile, "tls-cert", "", "PEM client certificate, for brokers that require one (mutual TLS)")
	fs.StringVar(&o.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.serverName, "tls-server-name", "", "name to verify the server certificate against (default: the host dialled)")
	fs.BoolVar(&o.insecure, "tls-insecure", false, "do not verify the server certificate (testing only)")
	fs.StringVar(&o.mechanism, "sasl-mechanism", os.Getenv(envSASLMechanism), "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; env "+envSASLMechanism)
	fs.StringVar(&o.user, "sasl-user", os.Getenv(envSASLUser), "SASL user name; env "+envSASLUser)
	fs.StringVar(&o.passwordEnv, "sasl-password-env", envSASLPassword, "environment variable holding the SASL password")
	fs.BoolVar(&o.passwordStdin, "sasl-password-stdin", false, "read the SASL password from the first line of standard input")
	fs.StringVar(&o.tokenFile, "sasl-token-file", "", "file holding the OAUTHBEARER token (a JWT), re-read on every authentication")
}

func (o *securityOptions) tlsEnabled() bool {
	return o.tls || o.caFile != "" || o.certFile != "" || o.keyFile != "" || o.serverName != "" || o.insecure
}

// tlsConfig is the client TLS configuration, nil without TLS.
func (o *securityOptions) tlsConfig() (*tls.Config, error) {
	if !o.tlsEnabled() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName, InsecureSkipVerify: o.insecure}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", o.caFile)
		}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.certFile != "" {
		kp, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// secret returns the SASL password: from standard input's first line with
// --sasl-password-stdin, else from the --sasl-password-env variable.
func (o *securityOptions) secret() (string, error) {
	if o.password != nil {
		return *o.password, nil
	}
	var pw string
	if o.passwordStdin {
		in := o.stdin
		if in == nil {
			in = os.Stdin
		}
		// Byte by byte, so whatever follows the line is left for the
		// command (produce reads records from the same input).
		var b strings.Builder
		one := make([]byte, 1)
		for {
			n, err := in.Read(one)
			if n == 1 {
				if one[0] == '\n' {
					break
				}
				b.WriteByte(one[0])
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", fmt.Errorf("--sasl-password-stdin: %w", err)
			}
		}
		pw = strings.TrimSuffix(b.String(), "\r")
	} else {
		pw = os.Getenv(o.passwordEnv)
	}
	if pw == "" {
		return "", fmt.Errorf("--sasl-mechanism %s needs a password: set %s or use --sasl-password-stdin", o.mechanism, o.passwordEnv)
	}
	o.password = &pw
	return pw, nil
}

// saslMechanism is the client's SASL mechanism, nil without SASL.
func (o *securityOptions) saslMechanism() (sasl.Mechanism, error) {
	m := strings.ToUpper(strings.TrimSpace(o.mechanism))
	if m == "" {
		return nil, nil
	}
	if m == "OAUTHBEARER" {
		if o.tokenFile == "" {
			return nil, errors.New("--sasl-mechanism OAUTHBEARER needs --sasl-token-file")
		}
		if _, err := o.token(); err != nil {
			return nil, err
		}
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			tok, err := o.token()
			return oauth.Auth{Token: tok}, err
		}), nil
	}
	if o.user == "" {
		return nil, fmt.Errorf("--sasl-mechanism %s needs --sasl-user", m)
	}
	pw, err := o.secret()
	if err != nil {
		return nil, err
	}
	switch m {
	case "PLAIN":
		return plain.Auth{User: o.user, Pass: pw}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: o.user, Pass: pw}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: o.user, Pass: pw}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", o.mechanism)
}

// token reads the OAUTHBEARER token file.
func (o *securityOptions) token() (string, error) {
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--sasl-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--sasl-token-file %s is empty", o.tokenFile)
	}
	return tok, nil
}

// kgoOpts are the client options for the flags.
func (o *securityOptions) kgoOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tc, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	m, err := o.saslMechanism()
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// registryOpts are the schema registry client options for the flags: the
// TLS settings, and HTTP Basic (user and password) or a bearer token.
func (o *securityOptions) registryOpts() ([]sr.ClientOpt, error) {
	tc, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if tc != nil {
		hc.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	opts := []sr.ClientOpt{sr.HTTPClient(hc)}
	switch m := strings.ToUpper(strings.TrimSpace(o.mechanism)); {
	case m == "OAUTHBEARER":
		tok, err := o.token()
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.BearerToken(tok))
	case m != "":
		pw, err := o.secret()
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.BasicAuth(o.user, pw))
	}
	return opts, nil
}
