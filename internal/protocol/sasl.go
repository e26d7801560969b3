package protocol

// SaslHandshake (key 17) v0–1 and SaslAuthenticate (key 36) v0–2: SASL
// authentication on SASL_PLAINTEXT and SASL_SSL listeners (KIP-43, KIP-152,
// KIP-368).
//
// A client names a mechanism with SaslHandshake (UNSUPPORTED_SASL_MECHANISM
// lists the enabled ones), then exchanges tokens: in SaslAuthenticate
// requests after a v1 handshake, or as bare length-prefixed frames after a
// v0 handshake (the pre-KIP-152 form, which has no way to report an error:
// a failure closes the connection). Until the exchange completes only
// ApiVersions, SaslHandshake and SaslAuthenticate are answered; any other
// request closes the connection, as Kafka does. A failed authentication is
// answered SASL_AUTHENTICATION_FAILED after Options.SASLFailureDelay (so
// guessing passwords is slow) and the connection is then closed.
//
// KIP-368 re-authentication: the session lasts until the credential
// expires (an OAUTHBEARER token's exp) or Options.MaxReauth, whichever is
// first, and SaslAuthenticate v1+ tells the client so
// (session_lifetime_ms). A client re-authenticates on the same connection
// with a new SaslHandshake and SaslAuthenticate; the principal and the
// mechanism must stay the same. A request other than those three after the
// session ended closes the connection.
//
// On a listener without SASL both APIs answer ILLEGAL_SASL_STATE.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// Authenticator runs SASL exchanges (internal/auth implements it).
type Authenticator interface {
	// Mechanisms lists the enabled mechanisms.
	Mechanisms() []string
	// Start begins an exchange of an enabled mechanism; any other name is
	// an error.
	Start(mechanism string) (SASLExchange, error)
}

// SASLExchange is one client's authentication in progress.
type SASLExchange interface {
	// Next consumes one client message and returns the reply. done is
	// true once the client is authenticated; an error means the
	// authentication failed (its text is sent to the client).
	Next(ctx context.Context, msg []byte) (reply []byte, done bool, err error)
	// Principal is the authenticated principal, once done.
	Principal() auth.Principal
	// Expiry is when the credential expires; zero if never.
	Expiry() time.Time
}

// errSASLRequired closes a connection that sends a request before it has
// authenticated, or after its session expired.
var errSASLRequired = errors.New("protocol: SASL authentication required first")

func handleSaslHandshake(_ context.Context, s *Server, rc *reqCtx, req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	sess := rc.sess
	if !sess.listener.SASL || s.opts.SASL == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	resp.SupportedMechanisms = s.opts.SASL.Mechanisms()
	if sess.exchange != nil || sess.rawTokens {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	if sess.authenticated && (req.Version == 0 || req.Mechanism != sess.mechanism) {
		// Re-authentication keeps the mechanism, and needs SaslAuthenticate.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	ex, err := s.opts.SASL.Start(req.Mechanism)
	if err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, nil
	}
	sess.mechanism, sess.exchange = req.Mechanism, ex
	sess.rawTokens = req.Version == 0
	return resp, nil
}

func handleSaslAuthenticate(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	sess := rc.sess
	if !sess.listener.SASL || sess.exchange == nil || sess.rawTokens {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strp("SaslAuthenticate without a SaslHandshake v1 naming the mechanism")
		rc.closeAfter = true
		return resp, nil
	}
	reply, done, err := s.saslStep(ctx, sess, req.SASLAuthBytes)
	resp.SASLAuthBytes = reply
	if err != nil {
		s.metrics.saslResult(sess.mechanism, false)
		rc.log.Info("SASL authentication failed", "mechanism", sess.mechanism, "err", err)
		resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, strp(err.Error())
		s.failureDelay(ctx)
		rc.closeAfter = true
		return resp, nil
	}
	if done {
		s.metrics.saslResult(sess.mechanism, true)
		if !sess.expiry.IsZero() {
			resp.SessionLifetimeMillis = max(1, sess.expiry.Sub(s.now()).Milliseconds())
		}
	}
	return resp, nil
}

// saslStep feeds one token to the session's exchange and, when it
// completes, authenticates the session. A failure ends the exchange.
func (s *Server) saslStep(ctx context.Context, sess *session, token []byte) (reply []byte, done bool, err error) {
	reply, done, err = sess.exchange.Next(ctx, token)
	if err == nil && done {
		p := sess.exchange.Principal()
		if sess.authenticated && p != sess.principal {
			err = fmt.Errorf("re-authentication as %s on a connection of %s", p, sess.principal)
		} else {
			sess.principal, sess.authenticated = p, true
			sess.expiry = s.sessionExpiry(sess.exchange.Expiry())
		}
	}
	if err != nil || done {
		sess.exchange, sess.rawTokens = nil, false
	}
	if err != nil {
		sess.authenticated = false
	}
	return reply, done && err == nil, err
}

// sessionExpiry is when a session authenticated now with a credential
// expiring at credExpiry ends: the earlier of credExpiry and MaxReauth.
func (s *Server) sessionExpiry(credExpiry time.Time) time.Time {
	exp := credExpiry
	if s.opts.MaxReauth > 0 {
		if limit := s.now().Add(s.opts.MaxReauth); exp.IsZero() || limit.Before(exp) {
			exp = limit
		}
	}
	return exp
}

// failureDelay waits before a failed authentication is answered.
func (s *Server) failureDelay(ctx context.Context) {
	if s.opts.SASLFailureDelay <= 0 {
		return
	}
	t := time.NewTimer(s.opts.SASLFailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// handleRawToken serves one bare SASL token after a SaslHandshake v0. The
// reply is a bare token too; a failure closes the connection (the v0 flow
// has no error response).
func (s *Server) handleRawToken(ctx context.Context, sess *session, token []byte) (pending, error) {
	reply, done, err := s.saslStep(ctx, sess, token)
	if err != nil {
		s.metrics.saslResult(sess.mechanism, false)
		s.failureDelay(ctx)
		return pending{}, fmt.Errorf("SASL authentication failed (%s): %w", sess.mechanism, err)
	}
	if done {
		s.metrics.saslResult(sess.mechanism, true)
	}
	if reply == nil {
		reply = []byte{}
	}
	return pending{raw: reply}, nil
}
