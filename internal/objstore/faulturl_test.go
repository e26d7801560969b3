package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/objstore/objstoretest"
)

func TestParseFaultURL(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		want      objstore.FaultConfig
		wantInner string
	}{
		{"file with rates", "fault+file:///d?put_error_rate=0.05&get_error_rate=0.02&seed=1",
			objstore.FaultConfig{PutErrorRate: 0.05, GetErrorRate: 0.02, Seed: 1, HasSeed: true}, "file:///d"},
		{"plain path", "fault+/var/objects?delete_error_rate=1&list_error_rate=0",
			objstore.FaultConfig{DeleteErrorRate: 1}, "/var/objects"},
		{"no parameters", "fault+mem://", objstore.FaultConfig{}, "mem://"},
		{"inner parameters kept", "fault+s3://b?region=eu-west-1&put_error_rate=0.5",
			objstore.FaultConfig{PutErrorRate: 0.5}, "s3://b?region=eu-west-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, inner, err := objstore.ParseFaultURL(tt.url)
			if err != nil {
				t.Fatalf("ParseFaultURL(%q): %v", tt.url, err)
			}
			if got != tt.want || inner != tt.wantInner {
				t.Fatalf("ParseFaultURL(%q) = %+v, %q; want %+v, %q", tt.url, got, inner, tt.want, tt.wantInner)
			}
		})
	}
}

func TestFaultURLErrors(t *testing.T) {
	tests := []struct {
		name, url, mention string
	}{
		{"rate above 1", "fault+mem://?put_error_rate=1.5", "put_error_rate"},
		{"negative rate", "fault+mem://?get_error_rate=-0.1", "get_error_rate"},
		{"rate not a number", "fault+mem://?delete_error_rate=often", "delete_error_rate"},
		{"NaN rate", "fault+mem://?list_error_rate=NaN", "list_error_rate"},
		{"bad seed", "fault+mem://?seed=-3", "seed"},
		{"repeated parameter", "fault+mem://?seed=1&seed=2", "seed"},
		{"misspelt rate", "fault+mem://?put_eror_rate=0.1", "put_eror_rate"},
		{"missing inner", "fault+", "missing inner"},
		{"missing inner with query", "fault+?seed=1", "missing inner"},
		{"nested", "fault+fault+mem://", "nested"},
		{"bad inner", "fault+ftp://x/y", "ftp"},
		{"file inner with foreign parameter", "fault+file:///tmp/x?metadata=skip", "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := objstore.Open(context.Background(), tt.url)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tt.url)
			}
			if !errors.Is(err, objstore.ErrUnsupportedURL) {
				t.Fatalf("Open(%q) = %v, want ErrUnsupportedURL", tt.url, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Open(%q) = %v, want it to mention %q", tt.url, err, tt.mention)
			}
		})
	}
}

func TestConformanceFaultWithoutFaults(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openURL(t, "fault+file://"+filepath.ToSlash(filepath.Join(t.TempDir(), "objects"))+"?seed=3")
	})
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openURL(t, "fault+"+filepath.Join(t.TempDir(), "plain"))
	})
}

// TestFaultRates checks that faults occur at about the asked rates, that a
// failed Put stores nothing and a failed Delete deletes nothing, and that an
// invalid key is reported as such even at rate 1.
func TestFaultRates(t *testing.T) {
	ctx := context.Background()
	s := openURL(t, "fault+mem://?put_error_rate=0.2&get_error_rate=0.1&delete_error_rate=0.3&seed=42")
	t.Cleanup(func() { _ = s.Close() })
	fs, ok := s.(*objstore.FaultStore)
	if !ok {
		t.Fatalf("Open returned %T, want *objstore.FaultStore", s)
	}
	const n = 4000
	near := func(what string, got int, rate float64) {
		t.Helper()
		// Five standard deviations of a binomial: never flakes, still catches
		// a rate ignored or applied twice.
		tol := 5 * math.Sqrt(n*rate*(1-rate))
		if math.Abs(float64(got)-n*rate) > tol {
			t.Errorf("%s: %d of %d calls failed, want about %.0f (rate %v)", what, got, n, n*rate, rate)
		}
	}
	stored := map[string]bool{}
	putFails := 0
	for i := range n {
		key := fmt.Sprintf("k/%05d", i)
		err := s.Put(ctx, key, []byte(key))
		switch {
		case err == nil:
			stored[key] = true
		case errors.Is(err, objstore.ErrInjectedFault):
			putFails++
		default:
			t.Fatalf("Put %s: %v", key, err)
		}
		_, gerr := fs.Inner().Get(ctx, key)
		if got := gerr == nil; got != stored[key] {
			t.Fatalf("Put %s returned %v but the inner store holds it: %v", key, err, got)
		}
	}
	near("put", putFails, 0.2)
	if fs.Injected("put") != putFails || fs.Calls("put") != n {
		t.Errorf("Injected(put) = %d, Calls(put) = %d; want %d, %d", fs.Injected("put"), fs.Calls("put"), putFails, n)
	}

	var keys []string
	for i := range n {
		if key := fmt.Sprintf("k/%05d", i); stored[key] {
			keys = append(keys, key)
		}
	}
	getFails := 0
	for i := range n {
		key := keys[i%len(keys)]
		var err error
		if i%2 == 0 {
			_, err = s.Get(ctx, key)
		} else {
			_, err = s.GetRange(ctx, key, 0, 1)
		}
		if err != nil {
			if !errors.Is(err, objstore.ErrInjectedFault) {
				t.Fatalf("read %s: %v", key, err)
			}
			getFails++
		}
	}
	near("get and getrange", getFails, 0.1)

	delFails := 0
	for i := range n {
		key := fmt.Sprintf("k/%05d", i)
		if !stored[key] {
			continue
		}
		err := s.Delete(ctx, key)
		if err != nil && !errors.Is(err, objstore.ErrInjectedFault) {
			t.Fatalf("Delete %s: %v", key, err)
		}
		_, gerr := fs.Inner().Get(ctx, key)
		if still := gerr == nil; still != (err != nil) {
			t.Fatalf("Delete %s returned %v but the object exists: %v", key, err, still)
		}
		if err != nil {
			delFails++
		}
	}
	if got, want := delFails, len(stored); math.Abs(float64(got)-0.3*float64(want)) > 5*math.Sqrt(float64(want)*0.3*0.7) {
		t.Errorf("delete: %d of %d calls failed, want about 30%%", got, want)
	}

	// List never fails at rate 0.
	for range 100 {
		if err := s.List(ctx, "k/", func(objstore.ObjectInfo) error { return nil }); err != nil {
			t.Fatalf("List at rate 0: %v", err)
		}
	}

	always := openURL(t, "fault+mem://?put_error_rate=1&get_error_rate=1")
	t.Cleanup(func() { _ = always.Close() })
	if err := always.Put(ctx, "../bad", nil); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Put of an invalid key at rate 1 = %v, want ErrInvalidKey", err)
	}
	if err := always.Put(ctx, "good", nil); !errors.Is(err, objstore.ErrInjectedFault) {
		t.Fatalf("Put at rate 1 = %v, want ErrInjectedFault", err)
	}
}

// TestFaultSeedReproducible checks that one seed gives one fault sequence.
func TestFaultSeedReproducible(t *testing.T) {
	ctx := context.Background()
	pattern := func() string {
		s := openURL(t, "fault+mem://?put_error_rate=0.5&seed=7")
		defer s.Close()
		var b strings.Builder
		for i := range 64 {
			if s.Put(ctx, fmt.Sprintf("k%d", i), nil) != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	if a, b := pattern(), pattern(); a != b {
		t.Fatalf("seed 7 gave two fault patterns:\n%s\n%s", a, b)
	}
}
