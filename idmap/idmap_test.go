package idmap_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"sbx/idmap"
)

func TestSingle(t *testing.T) {
	got := idmap.Single(0, 1000)
	want := idmap.Map{{Inside: 0, Outside: 1000, Count: 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("Single(0, 1000) = %v, want %v", got, want)
	}
}

func TestRootful(t *testing.T) {
	tests := []struct {
		name   string
		caller uint32
		subs   []idmap.Range
		want   idmap.Map
	}{
		{
			name: "no subordinate ids", caller: 1000,
			want: idmap.Map{{Inside: 0, Outside: 1000, Count: 1}},
		},
		{
			name: "one range", caller: 1000,
			subs: []idmap.Range{{Start: 100000, Count: 65536}},
			want: idmap.Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 65536}},
		},
		{
			name: "ranges in the order given, empty ones skipped", caller: 1001,
			subs: []idmap.Range{{Start: 300000, Count: 10}, {Start: 5, Count: 0}, {Start: 100000, Count: 65536}},
			want: idmap.Map{
				{Inside: 0, Outside: 1001, Count: 1},
				{Inside: 1, Outside: 300000, Count: 10},
				{Inside: 11, Outside: 100000, Count: 65536},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idmap.Rootful(tt.caller, tt.subs)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Rootful() = %v, want %v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate(): %v", err)
			}
			if out, ok := got.ToOutside(0); !ok || out != tt.caller {
				t.Errorf("ToOutside(0) = %d, %v; want the caller %d", out, ok, tt.caller)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	if got := idmap.Identity(0); got != nil {
		t.Errorf("Identity(0) = %v, want nil", got)
	}
	want := idmap.Map{{Inside: 0, Outside: 0, Count: 65537}}
	if got := idmap.Identity(65537); !slices.Equal(got, want) {
		t.Errorf("Identity(65537) = %v, want %v", got, want)
	}
	full := idmap.Identity(1<<32 - 1) // ids 0..MaxID
	if err := full.Validate(); err != nil {
		t.Errorf("Identity(2^32-1): %v", err)
	}
}

func TestKeepID(t *testing.T) {
	const subs = 65536 // subordinate ids after the caller
	const size = 1 + subs
	tests := []struct {
		name string
		id   uint32
		size uint32
		want idmap.Map
	}{
		{
			name: "size 0", id: 1000, size: 0, want: nil,
		},
		{
			name: "no subordinate ids", id: 1000, size: 1,
			want: idmap.Map{{Inside: 1000, Outside: 0, Count: 1}},
		},
		{
			name: "caller is 0", id: 0, size: size,
			want: idmap.Map{{Inside: 0, Outside: 0, Count: 1}, {Inside: 1, Outside: 1, Count: subs}},
		},
		{
			name: "caller below the subordinate count", id: 1000, size: size,
			want: idmap.Map{
				{Inside: 0, Outside: 1, Count: 1000},
				{Inside: 1000, Outside: 0, Count: 1},
				{Inside: 1001, Outside: 1001, Count: subs - 1000},
			},
		},
		{
			name: "caller equal to the subordinate count", id: subs, size: size,
			want: idmap.Map{
				{Inside: 0, Outside: 1, Count: subs},
				{Inside: subs, Outside: 0, Count: 1},
			},
		},
		{
			name: "caller above the subordinate count", id: 100000, size: size,
			want: idmap.Map{
				{Inside: 0, Outside: 1, Count: subs},
				{Inside: 100000, Outside: 0, Count: 1},
			},
		},
		{
			name: "caller at MaxID", id: idmap.MaxID, size: 10,
			want: idmap.Map{
				{Inside: 0, Outside: 1, Count: 9},
				{Inside: idmap.MaxID, Outside: 0, Count: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := idmap.KeepID(tt.id, tt.size)
			if !slices.Equal(m, tt.want) {
				t.Fatalf("KeepID(%d, %d) = %v, want %v", tt.id, tt.size, m, tt.want)
			}
			if tt.size == 0 {
				return
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate(): %v", err)
			}
			// Walk every inside id the map names: each must reach a
			// distinct parent id below size, and the caller parent 0.
			seen := make(map[uint32]uint32)
			for _, l := range m {
				for i := uint64(0); i < uint64(l.Count); i++ {
					in := l.Inside + uint32(i)
					out, ok := m.ToOutside(in)
					if !ok {
						t.Fatalf("ToOutside(%d) not mapped", in)
					}
					if out >= tt.size {
						t.Fatalf("ToOutside(%d) = %d, past the parent's %d ids", in, out, tt.size)
					}
					if prev, dup := seen[out]; dup {
						t.Fatalf("inside ids %d and %d both map to parent %d", prev, in, out)
					}
					seen[out] = in
				}
			}
			if len(seen) != int(tt.size) {
				t.Errorf("%d parent ids reached, want all %d", len(seen), tt.size)
			}
			if out, ok := m.ToOutside(tt.id); !ok || out != 0 {
				t.Errorf("ToOutside(caller %d) = %d, %v; want parent 0", tt.id, out, ok)
			}
			if in, ok := m.ToInside(0); !ok || in != tt.id {
				t.Errorf("ToInside(0) = %d, %v; want the caller %d", in, ok, tt.id)
			}
		})
	}
}

func TestSplitAlong(t *testing.T) {
	outer := idmap.Rootful(1000, []idmap.Range{{Start: 100000, Count: 10}, {Start: 200000, Count: 10}})
	tests := []struct {
		name string
		m    idmap.Map
		want idmap.Map
	}{
		{
			name: "caller 5: below spans one line, above two",
			m:    idmap.KeepID(5, 21),
			want: mapOf(0, 1, 5, 5, 0, 1, 6, 6, 5, 11, 11, 10),
		},
		{
			name: "caller 15: below spans two lines",
			m:    idmap.KeepID(15, 21),
			want: mapOf(0, 1, 10, 10, 11, 5, 15, 0, 1, 16, 16, 5),
		},
		{
			name: "caller 1000: all below",
			m:    idmap.KeepID(1000, 21),
			want: mapOf(0, 1, 10, 10, 11, 10, 1000, 0, 1),
		},
		{
			name: "outside ids the parent lacks are dropped",
			m:    mapOf(0, 15, 10),
			want: mapOf(0, 15, 6),
		},
		{name: "empty", m: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.SplitAlong(outer)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%v.SplitAlong(%v) = %v, want %v", tt.m, outer, got, tt.want)
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	m := idmap.Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 65536}}
	for _, tt := range []struct {
		in, out uint32
		ok      bool
	}{
		{0, 1000, true},
		{1, 100000, true},
		{65536, 165535, true},
		{65537, 0, false},
		{1<<32 - 1, 0, false},
	} {
		out, ok := m.ToOutside(tt.in)
		if out != tt.out || ok != tt.ok {
			t.Errorf("ToOutside(%d) = %d, %v; want %d, %v", tt.in, out, ok, tt.out, tt.ok)
		}
		if tt.ok {
			if in, ok := m.ToInside(tt.out); !ok || in != tt.in {
				t.Errorf("ToInside(%d) = %d, %v; want %d", tt.out, in, ok, tt.in)
			}
		}
	}
	if _, ok := m.ToInside(999); ok {
		t.Errorf("ToInside(999) mapped")
	}
	if got := m.Size(); got != 65537 {
		t.Errorf("Size() = %d, want 65537", got)
	}
}

func lines(n int) idmap.Map {
	m := make(idmap.Map, n)
	for i := range m {
		m[i] = idmap.Mapping{Inside: uint32(i) * 10, Outside: 100000 + uint32(i)*10, Count: 10}
	}
	return m
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		m       idmap.Map
		wantErr string // substring; "" means valid
	}{
		{name: "single", m: idmap.Single(0, 1000)},
		{name: "rootful", m: mapOf(0, 1000, 1, 1, 100000, 65536)},
		{name: "adjacent on both sides", m: mapOf(0, 0, 10, 10, 10, 10)},
		{name: "unsorted", m: mapOf(10, 10, 10, 0, 0, 10)},
		{name: "whole id space", m: mapOf(0, 0, 1<<32-1)},
		{name: "last id", m: mapOf(idmap.MaxID, idmap.MaxID, 1)},
		{name: "MaxLines lines", m: lines(idmap.MaxLines)},
		{name: "nil", m: nil, wantErr: "no lines"},
		{name: "empty", m: idmap.Map{}, wantErr: "no lines"},
		{name: "too many lines", m: lines(idmap.MaxLines + 1), wantErr: "341 lines"},
		{name: "zero count", m: mapOf(0, 1000, 1, 1, 100000, 0), wantErr: "line 2 (1 100000 0) has count 0"},
		{name: "inside past MaxID", m: mapOf(idmap.MaxID, 0, 2), wantErr: "runs past id"},
		{name: "inside is (uid_t)-1", m: mapOf(1<<32-1, 0, 1), wantErr: "runs past id"},
		{name: "outside past MaxID", m: mapOf(0, 1000, 1, 1, 1<<32-10, 10), wantErr: "line 2 (1 4294967286 10) runs past id 4294967294"},
		{name: "whole id space and one more", m: mapOf(0, 0, 1<<32-1, 0, 0, 1), wantErr: "overlap"},
		{name: "overlap inside", m: mapOf(0, 1000, 1, 1, 100000, 10, 5, 200000, 10), wantErr: "lines 2 and 3 overlap inside"},
		{name: "same inside", m: mapOf(0, 1000, 1, 0, 2000, 1), wantErr: "lines 1 and 2 overlap inside"},
		{name: "overlap outside", m: mapOf(0, 1000, 1, 1, 100000, 10, 20, 100009, 5), wantErr: "lines 2 and 3 overlap outside"},
		{name: "outside range holds another", m: mapOf(0, 100005, 1, 1, 100000, 10), wantErr: "lines 1 and 2 overlap outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(): %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, idmap.ErrInvalid) {
				t.Errorf("Validate() = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		m    idmap.Map
		want string
	}{
		{nil, ""},
		{idmap.Single(0, 1000), "0 1000 1\n"},
		{mapOf(0, 1000, 1, 1, 100000, 65536), "0 1000 1\n1 100000 65536\n"},
		{mapOf(idmap.MaxID, 0, 1), "4294967294 0 1\n"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestHelperArgs(t *testing.T) {
	tests := []struct {
		m    idmap.Map
		pid  int
		want []string
	}{
		{nil, 42, []string{"42"}},
		{idmap.Single(0, 1000), 1234, []string{"1234", "0", "1000", "1"}},
		{
			mapOf(0, 1000, 1, 1, 100000, 65536), 99999,
			[]string{"99999", "0", "1000", "1", "1", "100000", "65536"},
		},
		{mapOf(idmap.MaxID, 4000000000, 1), 1, []string{"1", "4294967294", "4000000000", "1"}},
	}
	for _, tt := range tests {
		if got := tt.m.HelperArgs(tt.pid); !slices.Equal(got, tt.want) {
			t.Errorf("%v.HelperArgs(%d) = %q, want %q", tt.m, tt.pid, got, tt.want)
		}
	}
}

// ranges decodes fuzz bytes into subordinate ranges, 8 bytes each.
// Ranges that run past MaxID are dropped: the parsers never return them
// (ParseSubID and ParseGetsubids refuse such lines), and Rootful and
// Usable take them on that promise.
func ranges(b []byte) []idmap.Range {
	var out []idmap.Range
	for ; len(b) >= 8; b = b[8:] {
		r := idmap.Range{Start: binary.LittleEndian.Uint32(b), Count: binary.LittleEndian.Uint32(b[4:])}
		if r.Count > 0 && uint64(r.Start)+uint64(r.Count)-1 > idmap.MaxID {
			continue
		}
		out = append(out, r)
	}
	return out
}

func rangeBytes(rs ...idmap.Range) []byte {
	var b []byte
	for _, r := range rs {
		b = binary.LittleEndian.AppendUint32(b, r.Start)
		b = binary.LittleEndian.AppendUint32(b, r.Count)
	}
	return b
}

func FuzzRootful(f *testing.F) {
	f.Add(uint32(1000), rangeBytes(idmap.Range{Start: 100000, Count: 65536}))
	f.Add(uint32(100005), rangeBytes(idmap.Range{Start: 100000, Count: 65536}, idmap.Range{Start: 100000, Count: 1}))
	f.Add(uint32(0), rangeBytes(idmap.Range{Start: 1, Count: idmap.MaxID}, idmap.Range{Start: 0, Count: 1<<32 - 1}))
	f.Add(uint32(7), []byte{})
	f.Fuzz(func(t *testing.T, caller uint32, b []byte) {
		if caller > idmap.MaxID { // (uid_t)-1 is nobody's id
			return
		}
		subs := idmap.Usable(caller, ranges(b))
		m := idmap.Rootful(caller, subs)
		if err := m.Validate(); err != nil {
			t.Fatalf("Rootful(%d, %v) = %v: %v", caller, subs, m, err)
		}
		if out, ok := m.ToOutside(0); !ok || out != caller {
			t.Fatalf("ToOutside(0) = %d, %v; want the caller %d", out, ok, caller)
		}
		if m.Size() > idmap.MaxID {
			t.Fatalf("Size() = %d, more than MaxID", m.Size())
		}
	})
}

func FuzzKeepID(f *testing.F) {
	f.Add(uint32(1000), uint32(1000), rangeBytes(idmap.Range{Start: 100000, Count: 65536}))
	f.Add(uint32(65536), uint32(1000), rangeBytes(idmap.Range{Start: 100000, Count: 65536}))
	f.Add(uint32(0), uint32(0), rangeBytes(idmap.Range{Start: 1, Count: idmap.MaxID}))
	f.Add(uint32(idmap.MaxID), uint32(5), []byte{})
	f.Fuzz(func(t *testing.T, id, caller uint32, b []byte) {
		if id > idmap.MaxID || caller > idmap.MaxID {
			return
		}
		outer := idmap.Rootful(caller, idmap.Usable(caller, ranges(b)))
		size := uint32(outer.Size())
		m := idmap.KeepID(id, size)
		if err := m.Validate(); err != nil {
			t.Fatalf("KeepID(%d, %d) = %v: %v", id, size, m, err)
		}
		if m.Size() != uint64(size) {
			t.Fatalf("KeepID(%d, %d) covers %d ids", id, size, m.Size())
		}
		for _, l := range m {
			if uint64(l.Outside)+uint64(l.Count) > uint64(size) {
				t.Fatalf("KeepID(%d, %d) line %v reaches past the parent's ids", id, size, l)
			}
		}
		if out, ok := m.ToOutside(id); !ok || out != 0 {
			t.Fatalf("KeepID(%d, %d): ToOutside(caller) = %d, %v; want 0", id, size, out, ok)
		}
		// Through both maps the caller is still the caller on the host.
		if host, ok := outer.ToOutside(0); !ok || host != caller {
			t.Fatalf("outer ToOutside(0) = %d, %v; want %d", host, ok, caller)
		}
		// The nested map as written, split along the outer one's lines.
		nested := m.SplitAlong(outer)
		if err := nested.Validate(); err != nil {
			t.Fatalf("KeepID(%d, %d).SplitAlong(%v) = %v: %v", id, size, outer, nested, err)
		}
		if nested.Size() != uint64(size) {
			t.Fatalf("KeepID(%d, %d).SplitAlong covers %d ids", id, size, nested.Size())
		}
		for _, l := range nested {
			if !withinOneLine(outer, l.Outside, l.Count) {
				t.Fatalf("nested line %v spans lines of %v", l, outer)
			}
		}
		if p, _ := nested.ToOutside(id); p != 0 {
			t.Fatalf("nested ToOutside(caller %d) = %d, want 0", id, p)
		}
		if size <= 1<<12 {
			for p := range size {
				in, ok := m.ToInside(p)
				if !ok {
					t.Fatalf("KeepID(%d, %d): parent %d not mapped", id, size, p)
				}
				if back, _ := m.ToOutside(in); back != p {
					t.Fatalf("KeepID(%d, %d): parent %d -> %d -> %d", id, size, p, in, back)
				}
			}
		}
	})
}

// withinOneLine says whether inside ids start..start+count-1 of m lie in
// one of its lines.
func withinOneLine(m idmap.Map, start, count uint32) bool {
	for _, l := range m {
		if start >= l.Inside && uint64(start)+uint64(count) <= uint64(l.Inside)+uint64(l.Count) {
			return true
		}
	}
	return false
}

// mapOf builds a Map from inside, outside, count triples.
func mapOf(triples ...uint32) idmap.Map {
	var m idmap.Map
	for ; len(triples) >= 3; triples = triples[3:] {
		m = append(m, idmap.Mapping{Inside: triples[0], Outside: triples[1], Count: triples[2]})
	}
	return m
}
