package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNoPrincipalRule means no principal mapping rule matched a
// certificate's subject; the client cannot be authenticated.
var ErrNoPrincipalRule = errors.New("auth: no principal mapping rule matches")

// PrincipalMapper turns a client certificate's distinguished name (RFC 2253
// form, "CN=alice,OU=eng,O=example") into a principal name, with the rules
// of Kafka's ssl.principal.mapping.rules: a comma-separated list of
// "RULE:pattern/replacement/" (optionally followed by L or U to lower- or
// upper-case the result) and "DEFAULT" (the whole name). The first rule
// whose pattern matches the whole name wins. No rules means DEFAULT.
type PrincipalMapper struct {
	rules []mappingRule
}

type mappingRule struct {
	def         bool
	pattern     *regexp.Regexp
	replacement string
	toLower     bool
	toUpper     bool
}

// NewPrincipalMapper parses rules.
func NewPrincipalMapper(rules string) (*PrincipalMapper, error) {
	m := &PrincipalMapper{}
	rest := strings.TrimSpace(rules)
	for rest != "" {
		var r mappingRule
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			r.def = true
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			rest = rest[len("RULE:"):]
			pattern, after, ok := cutUnescaped(rest, '/')
			if !ok {
				return nil, fmt.Errorf("rule %q: want RULE:pattern/replacement/[LU]", "RULE:"+rest)
			}
			replacement, after2, ok := cutUnescaped(after, '/')
			if !ok {
				return nil, fmt.Errorf("rule %q: want RULE:pattern/replacement/[LU]", "RULE:"+rest)
			}
			re, err := regexp.Compile("^(?:" + pattern + ")$")
			if err != nil {
				return nil, fmt.Errorf("rule pattern %q: %w", pattern, err)
			}
			r.pattern, r.replacement = re, replacement
			rest = after2
			switch {
			case strings.HasPrefix(rest, "L"):
				r.toLower, rest = true, rest[1:]
			case strings.HasPrefix(rest, "U"):
				r.toUpper, rest = true, rest[1:]
			}
		default:
			return nil, fmt.Errorf("invalid rule %q: want DEFAULT or RULE:pattern/replacement/[LU]", rest)
		}
		m.rules = append(m.rules, r)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' && rest[0] != '\n' {
			return nil, fmt.Errorf("invalid text %q after a rule: rules are separated by commas", rest)
		}
		rest = strings.TrimSpace(rest[1:])
	}
	if len(m.rules) == 0 {
		m.rules = []mappingRule{{def: true}}
	}
	return m, nil
}

// cutUnescaped splits s at the first sep not preceded by a backslash and
// unescapes "\/" in the part before it.
func cutUnescaped(s string, sep byte) (before, after string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == sep:
			b.WriteByte(sep)
			i++
		case s[i] == sep:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// Map returns the principal name for the distinguished name dn.
func (m *PrincipalMapper) Map(dn string) (string, error) {
	for _, r := range m.rules {
		if r.def {
			return dn, nil
		}
		match := r.pattern.FindStringSubmatchIndex(dn)
		if match == nil {
			continue
		}
		out := string(r.pattern.ExpandString(nil, r.replacement, dn, match))
		switch {
		case r.toLower:
			out = strings.ToLower(out)
		case r.toUpper:
			out = strings.ToUpper(out)
		}
		return out, nil
	}
	return "", fmt.Errorf("%w %q", ErrNoPrincipalRule, dn)
}
