package auth

import (
	"errors"
	"testing"
)

func TestPrincipalMapper(t *testing.T) {
	const dn = "CN=Alice Smith,OU=Eng,O=Example,C=US"
	for _, tc := range []struct {
		name, rules, dn, want string
		wantErr               bool
	}{
		{name: "no rules is DEFAULT", rules: "", dn: dn, want: dn},
		{name: "DEFAULT", rules: "DEFAULT", dn: dn, want: dn},
		{name: "CN only", rules: `RULE:^CN=(.*?),OU=.*$/$1/`, dn: dn, want: "Alice Smith"},
		{name: "lower case", rules: `RULE:^CN=(.*?),OU=.*$/$1/L`, dn: dn, want: "alice smith"},
		{name: "upper case", rules: `RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/U`, dn: dn, want: "ALICE SMITH@ENG"},
		{name: "first matching rule wins", rules: `RULE:^CN=Bob.*$/bob/, RULE:^CN=(.*?),.*$/$1/L, DEFAULT`, dn: dn, want: "alice smith"},
		{name: "falls through to DEFAULT", rules: `RULE:^CN=Bob.*$/bob/,DEFAULT`, dn: dn, want: dn},
		{name: "escaped slash", rules: `RULE:^CN=(.*?)\/x,.*$/$1/`, dn: "CN=a/x,O=b", want: "a"},
		{name: "pattern matches the whole name", rules: `RULE:CN=Alice/alice/`, dn: dn, wantErr: true},
		{name: "no rule matches", rules: `RULE:^CN=Bob.*$/bob/`, dn: dn, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewPrincipalMapper(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Map(tc.dn)
			if tc.wantErr {
				if !errors.Is(err, ErrNoPrincipalRule) {
					t.Fatalf("Map = %q, %v; want ErrNoPrincipalRule", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Map = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"RULE:abc", "RULE:a/b", "NOPE", "DEFAULT DEFAULT", "RULE:(/x/"} {
		if _, err := NewPrincipalMapper(bad); err == nil {
			t.Errorf("NewPrincipalMapper(%q) accepted", bad)
		}
	}
}
