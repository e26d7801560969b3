package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Principal is an authenticated identity, "User:alice" in Kafka's notation.
type Principal struct {
	// Type is the principal type; "User" for every principal Runnel makes.
	Type string
	// Name is the user name, the certificate's mapped subject, or the
	// token's principal claim.
	Name string
}

// UserType is the principal type of every authenticated client.
const UserType = "User"

// Anonymous is the principal of a client on a listener that does not
// authenticate (PLAINTEXT, or SSL without a client certificate).
var Anonymous = Principal{Type: UserType, Name: "ANONYMOUS"}

// User returns the principal User:name.
func User(name string) Principal { return Principal{Type: UserType, Name: name} }

// String is the principal in Kafka's notation, "User:alice".
func (p Principal) String() string { return p.Type + ":" + p.Name }

// IsZero reports whether p is unset.
func (p Principal) IsZero() bool { return p.Type == "" && p.Name == "" }

// ErrInvalidPrincipal means a principal string is not "Type:name".
var ErrInvalidPrincipal = errors.New("auth: invalid principal")

// ParsePrincipal parses "Type:name" (the name may itself contain colons).
func ParsePrincipal(s string) (Principal, error) {
	typ, name, ok := strings.Cut(s, ":")
	if !ok || typ == "" || name == "" {
		return Principal{}, fmt.Errorf("%w %q: want Type:name, e.g. User:alice", ErrInvalidPrincipal, s)
	}
	return Principal{Type: typ, Name: name}, nil
}
