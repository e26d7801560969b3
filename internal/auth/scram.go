package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/xdg-go/scram"

	"github.com/runnel-dev/runnel/internal/config"
)

// maxSCRAMMessage bounds a SCRAM client message; real ones are a few
// hundred bytes.
const maxSCRAMMessage = 8 << 10

// scramExchange is one SCRAM-SHA-256 or -512 authentication (RFC 5802,
// RFC 7677), run by xdg-go/scram's server conversation over credentials
// from the store. Channel binding is not offered (Kafka offers none).
// Kafka's "tokenauth" extension (delegation tokens) is refused; other
// extensions are ignored, as Kafka does.
type scramExchange struct {
	mech      string
	conv      *scram.ServerConversation
	step      int // messages consumed
	over      bool
	principal Principal
}

func (a *Authenticator) newSCRAMExchange(mech string) *scramExchange {
	hash := scram.SHA256
	if mech == config.MechanismSCRAMSHA512 {
		hash = scram.SHA512
	}
	lookup := func(user string) (scram.StoredCredentials, error) {
		// Unknown users get a stand-in, so they fail at the proof like a
		// wrong password instead of answering "unknown user".
		cred, _ := a.lookup(user, mech)
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(cred.Salt), Iters: cred.Iterations},
			StoredKey:  cred.StoredKey,
			ServerKey:  cred.ServerKey,
		}, nil
	}
	srv, err := hash.NewServer(lookup)
	if err != nil {
		// NewServer fails only without a lookup function.
		panic(fmt.Sprintf("auth: scram server: %v", err))
	}
	return &scramExchange{mech: mech, conv: srv.NewConversation()}
}

func (e *scramExchange) Next(_ context.Context, msg []byte) ([]byte, bool, error) {
	if e.over {
		return nil, false, fmt.Errorf("%w: the %s exchange is over", ErrIllegalSASLState, e.mech)
	}
	if len(msg) > maxSCRAMMessage {
		e.over = true
		return nil, false, failed(e.mech, "message too long")
	}
	e.step++
	switch e.step {
	case 1:
		if err := checkSCRAMExtensions(string(msg)); err != nil {
			e.over = true
			return nil, false, failed(e.mech, err.Error())
		}
		reply, err := e.conv.Step(string(msg))
		if err != nil {
			e.over = true
			return nil, false, failed(e.mech, "malformed client-first message")
		}
		if authz := e.conv.AuthzID(); authz != "" && authz != e.conv.Username() {
			e.over = true
			return nil, false, failed(e.mech, "authorization id must equal the username")
		}
		return []byte(reply), false, nil
	default:
		e.over = true
		reply, err := e.conv.Step(string(msg))
		if err != nil || !e.conv.Valid() {
			return nil, false, failed(e.mech, "invalid credentials")
		}
		e.principal = User(e.conv.Username())
		return []byte(reply), true, nil
	}
}

func (e *scramExchange) Principal() Principal { return e.principal }
func (e *scramExchange) Expiry() time.Time    { return time.Time{} }

// checkSCRAMExtensions refuses Kafka's tokenauth extension, which asks to
// authenticate with a delegation token: Runnel has none. Extensions follow
// the nonce in the client-first message: gs2-header, n=user, r=nonce, ext...
func checkSCRAMExtensions(msg string) error {
	fields := strings.Split(msg, ",")
	if len(fields) <= 4 {
		return nil
	}
	for _, f := range fields[4:] {
		k, v, _ := strings.Cut(f, "=")
		if k == "tokenauth" && strings.EqualFold(v, "true") {
			return fmt.Errorf("delegation tokens (tokenauth) are not supported")
		}
	}
	return nil
}
