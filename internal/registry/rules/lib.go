package rules

import (
	"net"
	"net/mail"
	"net/url"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// checksLibrary declares the string checks Confluent's CEL executors offer
// on top of standard CEL, so contracts written for them compile here:
// isEmail, isHostname, isIpv4, isIpv6, isUri, isUriRef, isUuid, each a
// member function of string returning bool.
func checksLibrary() cel.EnvOption {
	check := func(name string, f func(string) bool) cel.EnvOption {
		return cel.Function(name,
			cel.MemberOverload("string_"+name, []*cel.Type{cel.StringType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.False
					}
					return types.Bool(f(string(s)))
				})))
	}
	return cel.Lib(checksLib{opts: []cel.EnvOption{
		check("isEmail", isEmail),
		check("isHostname", isHostname),
		check("isIpv4", func(s string) bool {
			ip := net.ParseIP(s)
			return ip != nil && ip.To4() != nil && !strings.Contains(s, ":")
		}),
		check("isIpv6", func(s string) bool { ip := net.ParseIP(s); return ip != nil && strings.Contains(s, ":") }),
		check("isUri", func(s string) bool { u, err := url.Parse(s); return err == nil && u.IsAbs() }),
		check("isUriRef", func(s string) bool { _, err := url.Parse(s); return err == nil }),
		check("isUuid", isUUID),
	}})
}

type checksLib struct{ opts []cel.EnvOption }

func (l checksLib) CompileOptions() []cel.EnvOption     { return l.opts }
func (l checksLib) ProgramOptions() []cel.ProgramOption { return nil }

// isHostname checks an RFC 1123 host name: dot-separated labels of 1-63
// letters, digits and inner hyphens, 253 characters at most, the last
// label not all digits. One trailing dot is allowed.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20 // ASCII lower case; digits and '-' unchanged
			if !(c >= 'a' && c <= 'z') && !(l[i] >= '0' && l[i] <= '9') && l[i] != '-' {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// isEmail checks a bare address (no display name, no angle brackets):
// local part of at most 64 bytes, a host name domain, 254 bytes in all.
func isEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, "<> ") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at <= 64 && isHostname(s[at+1:])
}

// isUUID checks the 8-4-4-4-12 hexadecimal form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9') && !(c|0x20 >= 'a' && c|0x20 <= 'f') {
				return false
			}
		}
	}
	return true
}
