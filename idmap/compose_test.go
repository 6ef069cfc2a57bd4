package idmap_test

import (
	"slices"
	"testing"

	"sbx/idmap"
)

func TestSplitAlongMore(t *testing.T) {
	tests := []struct {
		name      string
		m, parent idmap.Map
		want      idmap.Map
	}{
		{
			name:   "identity over a three-line parent",
			m:      idmap.Identity(7),
			parent: mapOf(0, 1000, 1, 1, 100000, 2, 3, 200000, 4),
			want:   mapOf(0, 0, 1, 1, 1, 2, 3, 3, 4),
		},
		{
			name:   "a line within one parent line is kept",
			m:      mapOf(5, 2, 1),
			parent: mapOf(0, 1000, 1, 1, 100000, 2, 3, 200000, 4),
			want:   mapOf(5, 2, 1),
		},
		{
			name:   "parent lines out of inside order",
			m:      idmap.Identity(4),
			parent: mapOf(2, 500, 2, 0, 700, 2),
			want:   mapOf(0, 0, 2, 2, 2, 2),
		},
		{
			name:   "a hole in the parent drops ids",
			m:      idmap.Identity(10),
			parent: mapOf(0, 1000, 2, 5, 2000, 2),
			want:   mapOf(0, 0, 2, 5, 5, 2),
		},
		{
			name:   "ids past the parent are dropped",
			m:      mapOf(0, 3, 10),
			parent: idmap.Identity(5),
			want:   mapOf(0, 3, 2),
		},
		{
			name:   "nothing mapped",
			m:      mapOf(0, 10, 5),
			parent: idmap.Identity(5),
			want:   nil,
		},
		{
			name:   "empty parent",
			m:      idmap.Identity(5),
			parent: nil,
			want:   nil,
		},
		{
			name:   "the top of the id space",
			m:      mapOf(0, idmap.MaxID-1, 2),
			parent: mapOf(idmap.MaxID-1, 5, 1, idmap.MaxID, 9, 1),
			want:   mapOf(0, idmap.MaxID-1, 1, 1, idmap.MaxID, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.SplitAlong(tt.parent)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%v.SplitAlong(%v) = %v, want %v", tt.m, tt.parent, got, tt.want)
			}
			for _, l := range got {
				if !withinOneLine(tt.parent, l.Outside, l.Count) {
					t.Fatalf("line %v spans lines of %v", l, tt.parent)
				}
			}
		})
	}
}

func TestCompose(t *testing.T) {
	outer := idmap.Rootful(1000, []idmap.Range{{Start: 100000, Count: 10}, {Start: 200000, Count: 10}})
	tests := []struct {
		name  string
		inner idmap.Map
		want  idmap.Map
	}{
		{
			name:  "identity: the outer map itself",
			inner: idmap.Identity(21),
			want:  outer,
		},
		{
			name:  "keep-id 5",
			inner: idmap.KeepID(5, 21),
			want:  mapOf(0, 100000, 5, 5, 1000, 1, 6, 100005, 5, 11, 200000, 10),
		},
		{
			name:  "keep-id 15",
			inner: idmap.KeepID(15, 21),
			want:  mapOf(0, 100000, 10, 10, 200000, 5, 15, 1000, 1, 16, 200005, 5),
		},
		{
			name:  "one id",
			inner: idmap.Single(0, 12),
			want:  mapOf(0, 200001, 1),
		},
		{
			name:  "ids outer lacks are dropped",
			inner: mapOf(0, 18, 10),
			want:  mapOf(0, 200007, 3),
		},
		{name: "empty", inner: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idmap.Compose(tt.inner, outer)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Compose(%v, %v) = %v, want %v", tt.inner, outer, got, tt.want)
			}
			// Composing is translating twice.
			for _, l := range got {
				for _, in := range []uint32{l.Inside, l.Inside + l.Count - 1} {
					mid, ok1 := tt.inner.ToOutside(in)
					host, ok2 := outer.ToOutside(mid)
					if got, _ := got.ToOutside(in); !ok1 || !ok2 || got != host {
						t.Fatalf("inside %d: composed %d, through both maps %d (%v, %v)", in, got, host, ok1, ok2)
					}
				}
			}
		})
	}
}

func TestHostKeepID(t *testing.T) {
	sub := []idmap.Range{{Start: 100000, Count: 65536}}
	tests := []struct {
		name       string
		id, caller uint32
		subs       []idmap.Range
		want       idmap.Map
	}{
		{
			name: "caller below the subordinate count",
			id:   1000, caller: 1000, subs: sub,
			want: mapOf(0, 100000, 1000, 1000, 1000, 1, 1001, 101000, 64536),
		},
		{
			name: "caller inside the count, at its last id",
			id:   65535, caller: 65535, subs: sub,
			want: mapOf(0, 100000, 65535, 65535, 65535, 1, 65536, 165535, 1),
		},
		{
			name: "caller equal to the count",
			id:   65536, caller: 65536, subs: sub,
			want: mapOf(0, 100000, 65536, 65536, 65536, 1),
		},
		{
			name: "caller above the count",
			id:   200000, caller: 200000, subs: sub,
			want: mapOf(0, 100000, 65536, 200000, 200000, 1),
		},
		{
			name: "caller 0",
			id:   0, caller: 0, subs: sub,
			want: mapOf(0, 0, 1, 1, 100000, 65536),
		},
		{
			name: "id 0 is Rootful",
			id:   0, caller: 1000, subs: sub,
			want: idmap.Rootful(1000, sub),
		},
		{
			name: "two ranges, the caller's id inside the second",
			id:   1000, caller: 1000, subs: []idmap.Range{{Start: 100000, Count: 500}, {Start: 300000, Count: 1000}},
			want: mapOf(0, 100000, 500, 500, 300000, 500, 1000, 1000, 1, 1001, 300500, 500),
		},
		{
			name: "ranges in file order, not sorted",
			id:   3, caller: 1000, subs: []idmap.Range{{Start: 300000, Count: 2}, {Start: 100000, Count: 3}},
			want: mapOf(0, 300000, 2, 2, 100000, 1, 3, 1000, 1, 4, 100001, 2),
		},
		{
			name: "three ranges, the caller above them all",
			id:   1000, caller: 1000, subs: []idmap.Range{{Start: 10, Count: 1}, {Start: 20, Count: 2}, {Start: 30, Count: 3}},
			want: mapOf(0, 10, 1, 1, 20, 2, 3, 30, 3, 1000, 1000, 1),
		},
		{
			name: "no ranges",
			id:   1000, caller: 1000, subs: nil,
			want: idmap.Single(1000, 1000),
		},
		{
			name: "empty ranges are skipped",
			id:   1, caller: 1000, subs: []idmap.Range{{Start: 5, Count: 0}, {Start: 100000, Count: 2}},
			want: mapOf(0, 100000, 1, 1, 1000, 1, 2, 100001, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idmap.HostKeepID(tt.id, tt.caller, tt.subs)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("HostKeepID(%d, %d, %v) = %v, want %v", tt.id, tt.caller, tt.subs, got, tt.want)
			}
			checkHostKeepID(t, got, tt.id, tt.caller, tt.subs)
		})
	}
}

func TestHostKeepIDLarge(t *testing.T) {
	// More ranges than a map may have lines: Usable drops the excess.
	var many []idmap.Range
	for i := range uint32(400) {
		many = append(many, idmap.Range{Start: 1<<20 + i*(1<<22), Count: 1 << 21})
	}
	for _, caller := range []uint32{0, 1000, 1 << 30, idmap.MaxID} {
		u := idmap.Usable(caller, many)
		m := idmap.HostKeepID(caller, caller, u)
		checkHostKeepID(t, m, caller, caller, u)
		if len(m) < idmap.MaxLines-3 {
			t.Errorf("caller %d: %d lines; the test means to reach the line limit", caller, len(m))
		}
	}
	// Every id the kernel allows: all of them but the caller's, and more
	// than that, which Usable cuts short.
	for _, tt := range []struct {
		caller uint32
		subs   []idmap.Range
	}{
		{1000, []idmap.Range{{Start: 0, Count: 1000}, {Start: 1001, Count: idmap.MaxID - 1000}}},
		{idmap.MaxID, []idmap.Range{{Start: 0, Count: idmap.MaxID}}},
		{0, []idmap.Range{{Start: 1, Count: 1 << 31}, {Start: 1<<31 + 1, Count: 1<<31 - 2}, {Start: 5, Count: 1}}},
	} {
		u := idmap.Usable(tt.caller, tt.subs)
		m := idmap.HostKeepID(tt.caller, tt.caller, u)
		checkHostKeepID(t, m, tt.caller, tt.caller, u)
		if m.Size() != idmap.MaxID {
			t.Errorf("caller %d, subordinate ids %v: the map covers %d ids, want MaxID", tt.caller, tt.subs, m.Size())
		}
	}
}

// checkHostKeepID checks what HostKeepID promises: a map the kernel
// takes, in which id is the caller and every other inside id is a
// distinct subordinate id, each granted id used once.
func checkHostKeepID(t *testing.T, m idmap.Map, id, caller uint32, subs []idmap.Range) {
	t.Helper()
	if err := m.Validate(); err != nil { // no two lines overlap outside: the ids are distinct
		t.Fatalf("HostKeepID(%d, %d, %v) = %v: %v", id, caller, subs, m, err)
	}
	if out, ok := m.ToOutside(id); !ok || out != caller {
		t.Fatalf("HostKeepID(%d, %d, %v): inside %d -> %d, %v; want the caller", id, caller, subs, id, out, ok)
	}
	if in, ok := m.ToInside(caller); !ok || in != id {
		t.Fatalf("HostKeepID(%d, %d, %v): the caller is inside %d, %v; want %d", id, caller, subs, in, ok, id)
	}
	granted := uint64(1)
	for _, r := range subs {
		granted += uint64(r.Count)
	}
	if m.Size() != granted {
		t.Fatalf("HostKeepID(%d, %d, %v) covers %d ids, want %d", id, caller, subs, m.Size(), granted)
	}
	for _, l := range m {
		if l.Outside == caller && l.Count == 1 {
			continue
		}
		in := false
		for _, r := range subs {
			if l.Outside >= r.Start && uint64(l.Outside)+uint64(l.Count) <= uint64(r.Start)+uint64(r.Count) {
				in = true
				break
			}
		}
		if !in {
			t.Fatalf("HostKeepID(%d, %d, %v): line %v maps outside ids that are neither the caller nor within one subordinate range", id, caller, subs, l)
		}
	}
}

// refHostKeepID is HostKeepID written out id by id: the subordinate ids
// in order fill the inside ids from 0 up, skipping id, which is the
// caller.
func refHostKeepID(id, caller uint32, subs []idmap.Range) map[uint32]uint32 {
	ref := map[uint32]uint32{id: caller}
	next := uint32(0)
	for _, r := range subs {
		for k := range r.Count {
			if next == id {
				next++
			}
			ref[next] = r.Start + k
			next++
		}
	}
	return ref
}

func FuzzHostKeepID(f *testing.F) {
	f.Add(uint32(1000), uint32(1000), rangeBytes(idmap.Range{Start: 100000, Count: 65536}))
	f.Add(uint32(65536), uint32(65536), rangeBytes(idmap.Range{Start: 100000, Count: 65536}))
	f.Add(uint32(3), uint32(1000), rangeBytes(idmap.Range{Start: 300000, Count: 2}, idmap.Range{Start: 100000, Count: 3}))
	f.Add(uint32(0), uint32(0), rangeBytes(idmap.Range{Start: 1, Count: idmap.MaxID}))
	f.Add(uint32(idmap.MaxID), uint32(5), rangeBytes(idmap.Range{Start: 10, Count: 100}))
	f.Add(uint32(7), uint32(7), []byte{})
	f.Fuzz(func(t *testing.T, id, caller uint32, b []byte) {
		if id > idmap.MaxID || caller > idmap.MaxID {
			return
		}
		subs := idmap.Usable(caller, ranges(b))
		m := idmap.HostKeepID(id, caller, subs)
		checkHostKeepID(t, m, id, caller, subs)
		if m.Size() > 1<<12 {
			return
		}
		ref := refHostKeepID(id, caller, subs)
		if uint64(len(ref)) != m.Size() {
			t.Fatalf("HostKeepID(%d, %d, %v) = %v covers %d ids, the reference %d", id, caller, subs, m, m.Size(), len(ref))
		}
		for in, out := range ref {
			if got, ok := m.ToOutside(in); !ok || got != out {
				t.Fatalf("HostKeepID(%d, %d, %v) = %v: inside %d -> %d, %v; want %d", id, caller, subs, m, in, got, ok, out)
			}
		}
	})
}
