package tableflow

import "testing"

func TestOffsetsRoundTrip(t *testing.T) {
	o := Offsets{10: 5, 0: 12, 2: 0}
	s := o.String()
	if s != `{"0":12,"2":0,"10":5}` {
		t.Fatalf("String = %s", s)
	}
	back, err := ParseOffsets(s)
	if err != nil || len(back) != 3 || back[0] != 12 || back[10] != 5 || back[2] != 0 {
		t.Fatalf("ParseOffsets = %v, %v", back, err)
	}
	if empty, err := ParseOffsets(""); err != nil || len(empty) != 0 {
		t.Fatalf("empty = %v, %v", empty, err)
	}
	for _, bad := range []string{"[1]", `{"x":1}`, `{"-1":1}`, `{"1":-1}`, "{"} {
		if _, err := ParseOffsets(bad); err == nil {
			t.Errorf("ParseOffsets(%q) accepted", bad)
		}
	}
	if !(Offsets{0: 5}).Behind(Offsets{0: 6}) || (Offsets{0: 6, 1: 1}).Behind(Offsets{0: 6}) || !(Offsets{}).Behind(Offsets{3: 1}) {
		t.Fatal("Behind")
	}
}
