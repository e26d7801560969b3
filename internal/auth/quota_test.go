package auth

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func strp(s string) *string { return &s }

func TestQuotaPrecedence(t *testing.T) {
	u := func(name string) QuotaEntity { return QuotaEntity{User: name} }
	uc := func(user, client string) QuotaEntity { return QuotaEntity{User: user, ClientID: client} }
	all := quotaConfigs{
		uc("alice", "app"):                         {ProducerByteRate: 1},
		{User: "alice", ClientIDDefault: true}:     {ProducerByteRate: 2},
		u("alice"):                                 {ProducerByteRate: 3},
		{UserDefault: true, ClientID: "app"}:       {ProducerByteRate: 4},
		{UserDefault: true, ClientIDDefault: true}: {ProducerByteRate: 5},
		{UserDefault: true}:                        {ProducerByteRate: 6},
		{ClientID: "app"}:                          {ProducerByteRate: 7},
		{ClientIDDefault: true}:                    {ProducerByteRate: 8},
		u("bob"):                                   {ConsumerByteRate: 9},
		{User: "carol", ClientID: "other"}:         {ProducerByteRate: 10},
		{User: "dave", ClientIDDefault: true}:      {RequestPercentage: 50},
		{ClientID: "only-client"}:                  {ConsumerByteRate: 11},
		uc("erin", "app"):                          {ConsumerByteRate: 12},
	}
	// without removes the levels above want, one by one, so each level is
	// shown to win over every level below it.
	without := func(drop ...QuotaEntity) quotaConfigs {
		qc := quotaConfigs{}
		for e, v := range all {
			qc[e] = v
		}
		for _, e := range drop {
			delete(qc, e)
		}
		return qc
	}
	levels := []QuotaEntity{
		uc("alice", "app"), {User: "alice", ClientIDDefault: true}, u("alice"),
		{UserDefault: true, ClientID: "app"}, {UserDefault: true, ClientIDDefault: true}, {UserDefault: true},
		{ClientID: "app"}, {ClientIDDefault: true},
	}
	tags := []usageKey{
		{ProducerByteRate, "alice", "app"}, {ProducerByteRate, "alice", "app"}, {ProducerByteRate, "alice", ""},
		{ProducerByteRate, "alice", "app"}, {ProducerByteRate, "alice", "app"}, {ProducerByteRate, "alice", ""},
		{ProducerByteRate, "", "app"}, {ProducerByteRate, "", "app"},
	}
	for i := range levels {
		t.Run(levels[i].String(), func(t *testing.T) {
			qc := without(levels[:i]...)
			v, tag, ok := qc.resolve(ProducerByteRate, "alice", "app")
			if !ok || v != float64(i+1) || tag != tags[i] {
				t.Fatalf("resolve = %v %+v %v, want %d %+v", v, tag, ok, i+1, tags[i])
			}
		})
	}

	cases := []struct {
		name         string
		key          QuotaKey
		user, client string
		want         float64
		tag          usageKey
		ok           bool
	}{
		{"quota per key: bob's consumer quota", ConsumerByteRate, "bob", "x", 9, usageKey{ConsumerByteRate, "bob", ""}, true},
		{"bob's producer quota falls to the user default", ProducerByteRate, "bob", "x", 5, usageKey{ProducerByteRate, "bob", "x"}, true},
		{"another user's entity does not apply", ProducerByteRate, "carol", "app", 4, usageKey{ProducerByteRate, "carol", "app"}, true},
		{"empty client id skips named client levels", ProducerByteRate, "zed", "", 5, usageKey{ProducerByteRate, "zed", ""}, true},
		{"no quota for the key at all", ControllerMutationRate, "alice", "app", 0, usageKey{}, false},
		{"user+client wins over client", ConsumerByteRate, "erin", "app", 12, usageKey{ConsumerByteRate, "erin", "app"}, true},
		{"client-only quota", ConsumerByteRate, "someone", "only-client", 11, usageKey{ConsumerByteRate, "", "only-client"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, tag, ok := all.resolve(c.key, c.user, c.client)
			if ok != c.ok || v != c.want || tag != c.tag {
				t.Fatalf("resolve = %v %+v %v, want %v %+v %v", v, tag, ok, c.want, c.tag, c.ok)
			}
		})
	}
}

func TestSampledRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const n = 11
	w := time.Second
	cases := []struct {
		name    string
		records []struct {
			at time.Duration
			v  float64
		}
		at         time.Duration
		rate       float64
		windowSecs float64
	}{
		{name: "empty", at: 0, rate: 0, windowSecs: 10},
		{name: "young sensor is padded to n-1 windows", records: []struct {
			at time.Duration
			v  float64
		}{{0, 1000}}, at: 500 * time.Millisecond, rate: 1000 / 10.5, windowSecs: 10.5},
		{name: "steady one per 100ms for 20s", records: func() (rs []struct {
			at time.Duration
			v  float64
		}) {
			for i := 0; i < 200; i++ {
				rs = append(rs, struct {
					at time.Duration
					v  float64
				}{time.Duration(i) * 100 * time.Millisecond, 100})
			}
			return rs
		}(), at: 20 * time.Second, rate: 1000, windowSecs: 0},
		{name: "samples older than the whole window expire", records: []struct {
			at time.Duration
			v  float64
		}{{0, 5000}}, at: 12 * time.Second, rate: 0, windowSecs: 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r sampledRate
			for _, rec := range c.records {
				r.record(rec.v, t0.Add(rec.at), w, n)
			}
			got, win := r.measure(t0.Add(c.at), w, n)
			if math.Abs(got-c.rate) > c.rate*0.1+1e-9 {
				t.Fatalf("rate = %v, want %v", got, c.rate)
			}
			if c.windowSecs > 0 && math.Abs(win.Seconds()-c.windowSecs) > 1e-9 {
				t.Fatalf("window = %v, want %vs", win, c.windowSecs)
			}
		})
	}
}

func TestThrottleFor(t *testing.T) {
	cases := []struct {
		name            string
		observed, quota float64
		window, limit   time.Duration
		want            time.Duration
	}{
		{"under quota", 900, 1000, 10 * time.Second, time.Minute, 0},
		{"at quota", 1000, 1000, 10 * time.Second, time.Minute, 0},
		{"10% over a 10s window", 1100, 1000, 10 * time.Second, time.Minute, time.Second},
		{"twice the quota over 11s", 2000, 1000, 11 * time.Second, time.Minute, 11 * time.Second},
		{"capped", 100000, 1000, 10 * time.Second, 11 * time.Second, 11 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := throttleFor(c.observed, c.quota, c.window, c.limit); got != c.want {
				t.Fatalf("throttle = %v, want %v", got, c.want)
			}
		})
	}
}

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b tokenBucket
	b.refill(t0, 2, 22) // starts full
	if b.tokens != 22 {
		t.Fatalf("tokens = %v, want 22", b.tokens)
	}
	b.tokens -= 30
	if got := b.throttle(2); got != 4*time.Second {
		t.Fatalf("throttle = %v, want 4s", got)
	}
	b.refill(t0.Add(3*time.Second), 2, 22)
	if b.tokens != -2 {
		t.Fatalf("tokens = %v, want -2", b.tokens)
	}
	b.refill(t0.Add(time.Hour), 2, 22)
	if b.tokens != 22 {
		t.Fatalf("tokens = %v, want capped at the burst", b.tokens)
	}
}

func TestParseQuotaEntity(t *testing.T) {
	c := func(typ string, name *string) QuotaComponent { return QuotaComponent{Type: typ, Name: name} }
	cases := []struct {
		name string
		in   []QuotaComponent
		want QuotaEntity
		err  string
	}{
		{"user", []QuotaComponent{c("user", strp("alice"))}, QuotaEntity{User: "alice"}, ""},
		{"default user and client", []QuotaComponent{c("client-id", nil), c("user", nil)}, QuotaEntity{UserDefault: true, ClientIDDefault: true}, ""},
		{"empty", nil, QuotaEntity{}, "Invalid empty client quota entity"},
		{"duplicate", []QuotaComponent{c("user", strp("a")), c("user", strp("b"))}, QuotaEntity{}, "duplicate entity entry user"},
		{"empty name", []QuotaComponent{c("client-id", strp(""))}, QuotaEntity{}, "Empty client-id not supported"},
		{"unknown type", []QuotaComponent{c("group", strp("g"))}, QuotaEntity{}, "Unhandled client quota entity type: group"},
		{"ip with user", []QuotaComponent{c("ip", strp("1.2.3.4")), c("user", strp("a"))}, QuotaEntity{}, "IP entity should not be combined"},
		{"ip alone", []QuotaComponent{c("ip", strp("1.2.3.4"))}, QuotaEntity{}, "ip quotas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQuotaEntity(tc.in)
			if tc.err != "" {
				if !errors.Is(err, ErrInvalidQuota) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestValidateQuotaValue(t *testing.T) {
	cases := []struct {
		key string
		v   float64
		err string
	}{
		{"producer_byte_rate", 1048576, ""},
		{"request_percentage", 12.5, ""},
		{"controller_mutation_rate", 0.5, ""},
		{"producer_byte_rate", 1.5, "cannot be a fractional value"},
		{"consumer_byte_rate", -1, "must be greater than 0"},
		{"request_percentage", 0, "must be greater than 0"},
		{"producer_byte_rate", math.NaN(), "must be greater than 0"},
		{"connection_creation_rate", 10, "Invalid configuration key"},
		{"bogus", 1, "Invalid configuration key"},
		{"producer_byte_rate", 1e20, "too large"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			err := ValidateQuotaValue(c.key, c.v)
			if c.err == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidQuota) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}

func TestQuotaFilter(t *testing.T) {
	entities := []QuotaEntity{
		{User: "alice"},
		{User: "alice", ClientID: "app"},
		{UserDefault: true},
		{UserDefault: true, ClientIDDefault: true},
		{ClientID: "app"},
		{ClientIDDefault: true},
	}
	qc := quotaConfigs{}
	for _, e := range entities {
		qc[e] = map[QuotaKey]float64{ProducerByteRate: 1}
	}
	fc := func(typ string, m QuotaMatch, name *string) QuotaFilterComponent {
		return QuotaFilterComponent{Type: typ, Match: m, Name: name}
	}
	cases := []struct {
		name   string
		filter QuotaFilter
		want   []string
		err    error
	}{
		{"everything", QuotaFilter{}, []string{"client-id=<default>", "client-id=app", "user=<default>", "user=<default>, client-id=<default>", "user=alice", "user=alice, client-id=app"}, nil},
		{"strict nothing", QuotaFilter{Strict: true}, nil, nil},
		{"exact user", QuotaFilter{Components: []QuotaFilterComponent{fc("user", QuotaMatchExact, strp("alice"))}}, []string{"user=alice", "user=alice, client-id=app"}, nil},
		{"exact user strict", QuotaFilter{Components: []QuotaFilterComponent{fc("user", QuotaMatchExact, strp("alice"))}, Strict: true}, []string{"user=alice"}, nil},
		{"default user", QuotaFilter{Components: []QuotaFilterComponent{fc("user", QuotaMatchDefault, nil)}}, []string{"user=<default>", "user=<default>, client-id=<default>"}, nil},
		{"any client strict", QuotaFilter{Components: []QuotaFilterComponent{fc("client-id", QuotaMatchAny, nil)}, Strict: true}, []string{"client-id=<default>", "client-id=app"}, nil},
		{"any user and any client", QuotaFilter{Components: []QuotaFilterComponent{fc("user", QuotaMatchAny, nil), fc("client-id", QuotaMatchAny, nil)}}, []string{"user=<default>, client-id=<default>", "user=alice, client-id=app"}, nil},
		{"ip matches nothing", QuotaFilter{Components: []QuotaFilterComponent{fc("ip", QuotaMatchAny, nil)}}, nil, nil},
		{"duplicate type", QuotaFilter{Components: []QuotaFilterComponent{fc("user", QuotaMatchAny, nil), fc("user", QuotaMatchDefault, nil)}}, nil, ErrInvalidQuota},
		{"empty type", QuotaFilter{Components: []QuotaFilterComponent{fc("", QuotaMatchAny, nil)}}, nil, ErrInvalidQuota},
		{"unknown type", QuotaFilter{Components: []QuotaFilterComponent{fc("group", QuotaMatchAny, nil)}}, nil, ErrUnsupportedQuotaEntity},
		{"ip with user", QuotaFilter{Components: []QuotaFilterComponent{fc("ip", QuotaMatchAny, nil), fc("user", QuotaMatchAny, nil)}}, nil, ErrInvalidQuota},
		{"bad match type", QuotaFilter{Components: []QuotaFilterComponent{fc("user", 7, nil)}}, nil, ErrInvalidQuota},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.filter.compile()
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range qc.matching(m) {
				got = append(got, e.Entity.String())
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}

func TestEntityPath(t *testing.T) {
	for _, e := range []QuotaEntity{
		{User: "alice"}, {User: "a/b c", ClientID: "x/y"}, {UserDefault: true, ClientIDDefault: true},
		{ClientID: "<default>"}, {ClientIDDefault: true}, {User: "<default>", ClientIDDefault: true},
	} {
		p := entityPath(e)
		got, ok := parseEntityPath(p)
		if !ok || got != e {
			t.Errorf("%+v -> %q -> %+v %v", e, p, got, ok)
		}
	}
	if entityPath(QuotaEntity{User: "<default>"}) == entityPath(QuotaEntity{UserDefault: true}) {
		t.Error("a user named <default> shares the default user's key")
	}
}

func TestMutationDebtOutlivesIdleSweep(t *testing.T) {
	q := NewQuotas(QuotaOptions{})
	now := time.Unix(5000, 0)
	q.opts.Now = func() time.Time { return now }
	qc := quotaConfigs{{User: "alice"}: {ControllerMutationRate: 1}}
	q.configs.Store(&qc)
	// 1000 partitions at 1/s with a burst of 11 leave 989 s of debt.
	if d, ok := q.RecordMutations("alice", "c", 1000, true); !ok || d != 989*time.Second {
		t.Fatalf("first = %v %v", d, ok)
	}
	now = now.Add(time.Minute)
	q.activeRates(now) // the publisher's sweep
	if d, ok := q.RecordMutations("alice", "c", 1, true); ok || d != 929*time.Second {
		t.Fatalf("a minute later = %v %v, want refused with 929s left", d, ok)
	}
	now = now.Add(time.Hour)
	q.activeRates(now)
	if len(q.buckets) != 0 {
		t.Fatal("a refilled bucket was kept")
	}
}

func TestPublishedRatesAreBounded(t *testing.T) {
	q := NewQuotas(QuotaOptions{})
	now := time.Unix(5000, 0)
	q.opts.Now = func() time.Time { return now }
	qc := quotaConfigs{{ClientIDDefault: true}: {ProducerByteRate: 1000}}
	q.configs.Store(&qc)
	for i := 0; i < maxPublished+10; i++ {
		q.Record(ProducerByteRate, "u", "client-"+strconv.Itoa(i), float64(i))
	}
	rates := q.activeRates(now)
	if len(rates) != maxPublished {
		t.Fatalf("%d published, want %d", len(rates), maxPublished)
	}
	for _, r := range rates {
		if r.ClientID == "client-0" || r.ClientID == "client-5" {
			t.Fatalf("%s, among the lowest, was kept over busier clients", r.ClientID)
		}
	}
}
