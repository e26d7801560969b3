package auth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/config"
)

// The fuzz targets run their seed corpus in a normal "go test"; run one
// longer with e.g. go test -fuzz FuzzSCRAMExchange ./internal/auth/.

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00alice\x00pw", "alice\x00alice\x00pw", "", "\x00", "\x00\x00", "a\x00b", "\x00a\x00b\x00c", "\x00\xff\x00pw"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		authzid, user, password, err := parsePlain(msg)
		if err != nil {
			return
		}
		if user == "" || password == "" {
			t.Fatalf("accepted an empty username or password: %q", msg)
		}
		if got := []byte(authzid + "\x00" + user + "\x00" + password); !bytes.Equal(got, msg) {
			t.Fatalf("decoded %q, %q, %q from %q", authzid, user, password, msg)
		}
	})
}

// FuzzSCRAMExchange feeds arbitrary client-first and client-final messages
// into an exchange for a real user: it must never panic, never finish on
// the first message, and never authenticate without the password.
func FuzzSCRAMExchange(f *testing.F) {
	for _, s := range []struct{ first, final string }{
		{"n,,n=alice,r=abc", "c=biws,r=abc,p=AAAA"},
		{"n,,n=alice,r=abc,tokenauth=true", ""},
		{"y,a=alice,n=alice,r=x", "c=eSxhPWFsaWNlLA==,r=x,p=dGVzdA=="},
		{"p=tls-unique,,n=alice,r=x", ""},
		{"n,,n=al=2Cice,r=", "c=,r=,p="},
		{"n,,m=ext,n=alice,r=abc", ""},
		{"n,,n=alice=,r=abc", ""},
		{"", ""},
		{",,,,", ",,,"},
	} {
		f.Add([]byte(s.first), []byte(s.final))
	}
	creds := &Credentials{users: map[string]map[string]Credential{}, changed: make(chan struct{})}
	for _, m := range SCRAMMechanisms {
		salted, err := saltPassword(m, "secret", []byte("salt"), MinSCRAMIterations)
		if err != nil {
			f.Fatal(err)
		}
		if creds.users["alice"] == nil {
			creds.users["alice"] = map[string]Credential{}
		}
		creds.users["alice"][m] = newCredential(m, MinSCRAMIterations, []byte("salt"), salted)
	}
	a, err := NewAuthenticator(context.Background(), AuthenticatorOptions{Credentials: creds,
		Config: config.SASLConfig{Mechanisms: SCRAMMechanisms, SCRAMIterations: MinSCRAMIterations}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range SCRAMMechanisms {
			ex, err := a.Start(mech)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			reply, done, err := ex.Next(ctx, first)
			if done {
				t.Fatalf("done after a client-first message %q", first)
			}
			if err != nil {
				if !errors.Is(err, ErrAuthenticationFailed) {
					t.Fatalf("first: %v does not wrap ErrAuthenticationFailed", err)
				}
				continue
			}
			if !strings.HasPrefix(string(reply), "r=") {
				t.Fatalf("server-first %q", reply)
			}
			if _, done, err = ex.Next(ctx, final); done || err == nil || !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("final %q: done %v, err %v", final, done, err)
			}
			if _, _, err := ex.Next(ctx, final); !errors.Is(err, ErrIllegalSASLState) {
				t.Fatalf("third message: %v", err)
			}
		}
	})
}

func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range []string{
		"n,,\x01auth=Bearer abc.def.ghi\x01\x01",
		"y,a=ali=2Cce,\x01auth=bearer  tok==\x01\x01",
		"n,,\x01host=h\x01port=1\x01auth=Bearer t\x01\x01",
		"n,a=,\x01auth=Bearer t\x01\x01",
		"p=x,,\x01auth=Bearer t\x01\x01",
		"\x01", "", "n,,\x01\x01", "n,,\x01auth=Bearer t\x01",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := parseOAuthBearer(msg)
		if err != nil {
			if !errors.Is(err, errMalformedOAuth) {
				t.Fatalf("error %v does not wrap errMalformedOAuth", err)
			}
			return
		}
		s := string(msg)
		if !strings.HasPrefix(s, "n,") && !strings.HasPrefix(s, "y,") || !strings.HasSuffix(s, "\x01\x01") {
			t.Fatalf("accepted %q without a GS2 header or final kvsep", s)
		}
		if !validB64Token(m.token) || !strings.Contains(s, m.token+"\x01") {
			t.Fatalf("token %q from %q", m.token, s)
		}
		if strings.ContainsAny(m.authzid, "\x00\x01") {
			t.Fatalf("authzid %q holds control characters", m.authzid)
		}
		for k := range m.extensions {
			if k == "auth" || !validKVKey(k) {
				t.Fatalf("extension key %q", k)
			}
		}
	})
}

func TestCheckSCRAMExtensions(t *testing.T) {
	for msg, wantErr := range map[string]bool{
		"n,,n=a,r=x":                    false,
		"n,,n=a,r=x,ext=1":              false,
		"n,,n=a,r=x,tokenauth=false":    false,
		"n,,n=a,r=x,tokenauth=true":     true,
		"n,,n=a,r=x,a=1,tokenauth=TRUE": true,
	} {
		if err := checkSCRAMExtensions(msg); (err != nil) != wantErr {
			t.Errorf("checkSCRAMExtensions(%q) = %v, want error %v", msg, err, wantErr)
		}
	}
}
