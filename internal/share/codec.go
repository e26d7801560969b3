package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The stored form of a State, the value of its etcd key:
//
//	version byte (1 or 2)
//	start varint, end-start uvarint
//	members: uvarint count, then each uvarint length + bytes
//	runs: uvarint count, then each: length uvarint, state byte,
//	      delivery count uvarint, member index+1 uvarint (0 = none),
//	      deadline varint (unix ms), and in version 2 due varint (unix
//	      ms, 0 = not waiting out a retry delay)
//	letters: uvarint count, then each: offset (the first as a varint, the
//	      others as uvarint deltas from the previous one), delivery count
//	      uvarint, reason byte (0 rejected, 1 delivery count exceeded)
//
// Runs are contiguous from start, so only their lengths are stored.
// Version 2 added the retry due times. A state with none is still written
// as version 1, so brokers that know only version 1 read the share
// partitions of groups without a retry policy while a cluster is upgraded;
// both versions are read.
const (
	stateVersion1 = 1
	stateVersion2 = 2
)

var errCorrupt = errors.New("share: corrupt share partition state")

// Encode returns the stored form of s.
func (s *State) Encode() []byte {
	b := make([]byte, 0, 32+len(s.Runs)*8+len(s.Letters)*6)
	version := byte(stateVersion1)
	for _, r := range s.Runs {
		if r.Due != 0 {
			version = stateVersion2
			break
		}
	}
	b = append(b, version)
	b = binary.AppendVarint(b, s.Start)
	b = binary.AppendUvarint(b, uint64(s.End-s.Start))
	index := map[string]uint64{}
	var members []string
	for _, r := range s.Runs {
		if _, ok := index[r.Member]; r.Member != "" && !ok {
			index[r.Member] = uint64(len(members)) + 1
			members = append(members, r.Member)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(members)))
	for _, m := range members {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Runs)))
	for _, r := range s.Runs {
		b = binary.AppendUvarint(b, uint64(r.Last-r.First+1))
		b = append(b, byte(r.State))
		b = binary.AppendUvarint(b, uint64(r.DeliveryCount))
		b = binary.AppendUvarint(b, index[r.Member])
		b = binary.AppendVarint(b, r.Deadline)
		if version == stateVersion2 {
			b = binary.AppendVarint(b, r.Due)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.Letters)))
	for i, l := range s.Letters {
		if i == 0 {
			b = binary.AppendVarint(b, l.Offset)
		} else {
			b = binary.AppendUvarint(b, uint64(l.Offset-s.Letters[i-1].Offset))
		}
		b = binary.AppendUvarint(b, uint64(l.DeliveryCount))
		var reason byte
		if l.Reason == ReasonDeliveryCount {
			reason = 1
		}
		b = append(b, reason)
	}
	return b
}

// DecodeState parses the stored form of a State.
func DecodeState(b []byte) (*State, error) {
	d := decoder{b: b}
	version := d.byte()
	if d.err != nil {
		return nil, d.err
	}
	if version != stateVersion1 && version != stateVersion2 {
		return nil, fmt.Errorf("%w: version %d", errCorrupt, version)
	}
	s := &State{Start: d.varint()}
	s.End = s.Start + int64(d.uvarint(1<<40))
	members := make([]string, d.uvarint(uint64(len(d.b))))
	for i := range members {
		members[i] = string(d.bytes(d.uvarint(1 << 16)))
	}
	n := d.uvarint(uint64(len(d.b)))
	if d.err == nil && n > 0 {
		s.Runs = make([]Run, 0, n)
	}
	next := s.Start
	for i := uint64(0); i < n && d.err == nil; i++ {
		length := int64(d.uvarint(1 << 40))
		r := Run{First: next, Last: next + length - 1, State: RecordState(d.byte()), DeliveryCount: int16(d.uvarint(math.MaxInt16))}
		if m := d.uvarint(uint64(len(members))); m > 0 {
			r.Member = members[m-1]
		}
		r.Deadline = d.varint()
		if version == stateVersion2 {
			r.Due = d.varint()
			if r.Due != 0 && r.State != Available {
				d.fail("retry due time on a record not available")
			}
		}
		if length <= 0 {
			d.fail("empty run")
		}
		switch r.State {
		case Available, Acquired, Acknowledged, Archived:
		default:
			d.fail("unknown record state")
		}
		next = r.Last + 1
		s.Runs = append(s.Runs, r)
	}
	if d.err == nil && next != s.End {
		d.fail("runs do not cover the in-flight records")
	}
	nl := d.uvarint(uint64(len(d.b)))
	for i := uint64(0); i < nl && d.err == nil; i++ {
		var off int64
		if i == 0 {
			off = d.varint()
		} else {
			delta := d.uvarint(1 << 62)
			if delta == 0 {
				d.fail("dead letters not sorted")
			}
			off = s.Letters[i-1].Offset + int64(delta)
		}
		l := DeadLetter{Offset: off, DeliveryCount: int16(d.uvarint(math.MaxInt16)), Reason: ReasonRejected}
		switch d.byte() {
		case 0:
		case 1:
			l.Reason = ReasonDeliveryCount
		default:
			d.fail("unknown dead-letter reason")
		}
		s.Letters = append(s.Letters, l)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uvarint reads an unsigned varint no larger than bound.
func (d *decoder) uvarint(bound uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > bound {
		d.fail("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
