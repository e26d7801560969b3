package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// formatHelp documents the consume --format placeholders.
const formatHelp = `Format placeholders (as in kcat):
  %t topic         %p partition      %o offset
  %k key           %v value (or %s)  %T timestamp (Unix ms)
  %K key length    %S value length   %h headers as k=v,k=v
  %%  a literal %
Escapes: \n newline, \t tab, \r carriage return, \\ backslash.
A null key prints as nothing and its length as -1.`

// fmtVerb is one element of a parsed format: a literal or a field.
type fmtVerb byte

const (
	verbLiteral   fmtVerb = 0
	verbTopic     fmtVerb = 't'
	verbPartition fmtVerb = 'p'
	verbOffset    fmtVerb = 'o'
	verbKey       fmtVerb = 'k'
	verbValue     fmtVerb = 'v'
	verbKeyLen    fmtVerb = 'K'
	verbValueLen  fmtVerb = 'S'
	verbTimestamp fmtVerb = 'T'
	verbHeaders   fmtVerb = 'h'
)

type fmtPart struct {
	verb    fmtVerb
	literal string
}

// recordFormat renders records as text following a kcat-style format.
type recordFormat struct {
	parts []fmtPart
}

// parseFormat compiles a --format string; unknown placeholders and escapes
// and a trailing lone % or \ are errors.
func parseFormat(s string) (*recordFormat, error) {
	var (
		f   recordFormat
		lit strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			f.parts = append(f.parts, fmtPart{verb: verbLiteral, literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("format %q: lone %% at the end (write %%%% for a literal %%)", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 's':
				flush()
				f.parts = append(f.parts, fmtPart{verb: verbValue})
			case 't', 'p', 'o', 'k', 'v', 'K', 'S', 'T', 'h':
				flush()
				f.parts = append(f.parts, fmtPart{verb: fmtVerb(v)})
			default:
				return nil, fmt.Errorf("format %q: unknown placeholder %%%c", s, v)
			}
		case '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("format %q: lone \\ at the end (write \\\\ for a backslash)", s)
			}
			i++
			switch e := s[i]; e {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, fmt.Errorf("format %q: unknown escape \\%c", s, e)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return &f, nil
}

// Append renders r into dst.
func (f *recordFormat) Append(dst []byte, r *kgo.Record) []byte {
	for _, p := range f.parts {
		switch p.verb {
		case verbLiteral:
			dst = append(dst, p.literal...)
		case verbTopic:
			dst = append(dst, r.Topic...)
		case verbPartition:
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case verbOffset:
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case verbKey:
			dst = append(dst, r.Key...)
		case verbValue:
			dst = append(dst, r.Value...)
		case verbKeyLen:
			if r.Key == nil {
				dst = append(dst, "-1"...)
			} else {
				dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
			}
		case verbValueLen:
			if r.Value == nil {
				dst = append(dst, "-1"...)
			} else {
				dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
			}
		case verbTimestamp:
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case verbHeaders:
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
