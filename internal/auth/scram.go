package auth

import (
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"errors"
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
// RFC 7677) over credentials from the store. xdg-go/scram's server
// conversation parses the client-first message and makes the server-first
// one; the client-final message is verified here, with Kafka's rule for its
// nonce: it must end with the server-first nonce, not equal it. librdkafka
// (kcat, confluent-kafka-python, every librdkafka binding) sends its own
// nonce again in front of the combined one, and Kafka accepts that, so
// xdg-go's strict equality would refuse the most used Kafka client.
// Channel binding is not offered (Kafka offers none). Kafka's "tokenauth"
// extension (delegation tokens) is refused; other extensions are ignored,
// as Kafka does.
type scramExchange struct {
	mech      string
	hash      scram.HashGeneratorFcn
	conv      *scram.ServerConversation
	cred      Credential
	known     bool   // cred is the user's, not a stand-in
	gs2       string // the client-first message's gs2 header
	c1b       string // client-first-message-bare
	s1        string // server-first-message
	nonce     string // the combined nonce of s1
	step      int    // messages consumed
	over      bool
	principal Principal
}

func (a *Authenticator) newSCRAMExchange(mech string) *scramExchange {
	hash := scram.SHA256
	if mech == config.MechanismSCRAMSHA512 {
		hash = scram.SHA512
	}
	e := &scramExchange{mech: mech, hash: hash}
	lookup := func(user string) (scram.StoredCredentials, error) {
		// Unknown users get a stand-in, so they fail at the proof like a
		// wrong password instead of answering "unknown user".
		cred, known := a.lookup(user, mech)
		e.cred, e.known = cred, known
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
	e.conv = srv.NewConversation()
	return e
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
		gs2, bare, ok := cutGS2Header(string(msg))
		if !ok {
			e.over = true
			return nil, false, failed(e.mech, "malformed client-first message")
		}
		e.gs2, e.c1b, e.s1 = gs2, bare, reply
		e.nonce, _ = scramAttr(reply, "r")
		return []byte(reply), false, nil
	default:
		e.over = true
		reply, err := e.verifyFinal(string(msg))
		if err != nil {
			return nil, false, failed(e.mech, err.Error())
		}
		e.principal = User(e.conv.Username())
		return []byte(reply), true, nil
	}
}

// verifyFinal checks a client-final message ("c=...,r=...[,ext],p=...")
// against the stored credential and returns the server-final message.
func (e *scramExchange) verifyFinal(msg string) (string, error) {
	const invalid = "invalid credentials"
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", errors.New("malformed client-final message")
	}
	withoutProof, proofB64 := msg[:i], msg[i+len(",p="):]
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return "", errors.New("malformed client proof")
	}
	if cb, ok := scramAttr(withoutProof, "c"); !ok || cb != base64.StdEncoding.EncodeToString([]byte(e.gs2)) {
		return "", errors.New("channel binding does not match the gs2 header")
	}
	nonce, ok := scramAttr(withoutProof, "r")
	if !ok || e.nonce == "" || !strings.HasSuffix(nonce, e.nonce) {
		return "", errors.New("nonce does not match the server's")
	}
	h := e.hash
	authMessage := e.c1b + "," + e.s1 + "," + withoutProof
	mac := func(key []byte, s string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	sig := mac(e.cred.StoredKey, authMessage)
	if len(proof) != len(sig) || len(e.cred.StoredKey) != len(sig) {
		return "", errors.New(invalid)
	}
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ sig[j]
	}
	stored := h()
	stored.Write(clientKey)
	if subtle.ConstantTimeCompare(stored.Sum(nil), e.cred.StoredKey) != 1 || !e.known {
		return "", errors.New(invalid)
	}
	return "v=" + base64.StdEncoding.EncodeToString(mac(e.cred.ServerKey, authMessage)), nil
}

// cutGS2Header splits a client-first message into its gs2 header
// ("n,," or "n,a=user,") and the bare message.
func cutGS2Header(msg string) (header, bare string, ok bool) {
	first := strings.IndexByte(msg, ',')
	if first < 0 {
		return "", "", false
	}
	second := strings.IndexByte(msg[first+1:], ',')
	if second < 0 {
		return "", "", false
	}
	n := first + 1 + second + 1
	return msg[:n], msg[n:], true
}

// scramAttr returns the value of attribute k ("r", "c", ...) of a SCRAM
// message: the first field "k=...".
func scramAttr(msg, k string) (string, bool) {
	for _, f := range strings.Split(msg, ",") {
		if v, ok := strings.CutPrefix(f, k+"="); ok {
			return v, true
		}
	}
	return "", false
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
