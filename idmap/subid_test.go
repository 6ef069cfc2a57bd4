package idmap_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"sbx/idmap"
)

func TestParseSubID(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		user    string
		uid     uint32
		want    []idmap.Range
		wantErr string // substring of the error; "" means no error
	}{
		{
			name: "by name",
			text: "alice:100000:65536\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 100000, Count: 65536}},
		},
		{
			name: "by numeric uid",
			text: "1000:100000:65536\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 100000, Count: 65536}},
		},
		{
			name: "by uid with no name",
			text: "alice:1:1\n1000:200000:10\n",
			user: "", uid: 1000,
			want: []idmap.Range{{Start: 200000, Count: 10}},
		},
		{
			name: "empty name matches no empty owner",
			text: ":5:5\n",
			user: "", uid: 1000,
			want: nil,
		},
		{
			name: "name and uid lines in file order",
			text: "alice:300000:10\nbob:100000:65536\n1000:200000:20\nalice:400000:30\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 300000, Count: 10}, {Start: 200000, Count: 20}, {Start: 400000, Count: 30}},
		},
		{
			name: "other users only",
			text: "bob:100000:65536\ncarol:165536:65536\n",
			user: "alice", uid: 1000,
			want: nil,
		},
		{
			name: "empty input",
			text: "",
			user: "alice", uid: 1000,
			want: nil,
		},
		{
			name: "comments and blank lines",
			text: "# alice:1:1\n\n   \n\t# indented comment\nalice:100000:65536\n\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 100000, Count: 65536}},
		},
		{
			name: "surrounding space and CRLF",
			text: "  alice:100000:65536  \r\nalice:200000:1\r\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 100000, Count: 65536}, {Start: 200000, Count: 1}},
		},
		{
			name: "no final newline",
			text: "alice:100000:65536",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 100000, Count: 65536}},
		},
		{
			name: "malformed lines of other users skipped",
			text: "bob\nbob:1\nbob:x:y\nbob:1:2:3\ncarol:99999999999:1\nalice:100000:65536\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 100000, Count: 65536}},
		},
		{
			name: "prefix of the name is another user",
			text: "alic:1:1\nalice2:2:2\n10000:3:3\n",
			user: "alice", uid: 1000,
			want: nil,
		},
		{
			name: "user line without fields",
			text: "# header\nalice\n",
			user: "alice", uid: 1000,
			wantErr: "line 2: want owner:start:count",
		},
		{
			name: "user line with one field",
			text: "bob:1:1\n\nalice:100000\n",
			user: "alice", uid: 1000,
			wantErr: "line 3: want owner:start:count",
		},
		{
			name: "user line with four fields",
			text: "alice:100000:65536:1\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: count",
		},
		{
			name: "uid line with bad start",
			text: "alice:1:1\n1000:abc:65536\n",
			user: "alice", uid: 1000,
			wantErr: "line 2: start",
		},
		{
			name: "negative count",
			text: "alice:100000:-1\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: count",
		},
		{
			name: "empty start",
			text: "alice::1\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: start",
		},
		{
			name: "zero counts dropped",
			text: "alice:100000:0\nalice:200000:5\nalice:4294967295:0\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: 200000, Count: 5}},
		},
		{
			name: "range ending at MaxID",
			text: "alice:4294967294:1\nalice:0:4294967295\n",
			user: "alice", uid: 1000,
			want: []idmap.Range{{Start: idmap.MaxID, Count: 1}, {Start: 0, Count: 1<<32 - 1}},
		},
		{
			name: "range past MaxID",
			text: "alice:4294967295:1\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: range 4294967295+1 runs past id 4294967294",
		},
		{
			name: "start plus count past MaxID",
			text: "alice:4294000000:1000000\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: range",
		},
		{
			name: "start overflows uint32",
			text: "alice:4294967296:1\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: start",
		},
		{
			name: "count overflows uint32",
			text: "alice:0:4294967296\n",
			user: "alice", uid: 1000,
			wantErr: "line 1: count",
		},
		{
			name: "line too long",
			text: "# " + strings.Repeat("x", 2<<20) + "\nalice:1:1\n",
			user: "alice", uid: 1000,
			wantErr: "too long",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idmap.ParseSubID(strings.NewReader(tt.text), tt.user, tt.uid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSubID() = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("ParseSubID() returned ranges %v with its error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSubID(): %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseSubID() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseGetsubids(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []idmap.Range
		wantErr string
	}{
		{
			name: "one range",
			text: "0: alice 100000 65536\n",
			want: []idmap.Range{{Start: 100000, Count: 65536}},
		},
		{
			name: "several ranges in order, blank lines, extra space",
			text: "0: alice 300000 10\n\n  1:  alice\t100000  65536  \n2: 1000 200000 1",
			want: []idmap.Range{{Start: 300000, Count: 10}, {Start: 100000, Count: 65536}, {Start: 200000, Count: 1}},
		},
		{
			name: "empty",
			text: "",
			want: nil,
		},
		{
			name: "zero count dropped",
			text: "0: alice 100000 0\n1: alice 5 5\n",
			want: []idmap.Range{{Start: 5, Count: 5}},
		},
		{
			name: "range ending at MaxID",
			text: "0: alice 4294967290 5\n",
			want: []idmap.Range{{Start: 4294967290, Count: 5}},
		},
		{
			name:    "error message of getsubids",
			text:    "Error fetching ranges\n",
			wantErr: "getsubids line 1: want",
		},
		{
			name:    "three fields",
			text:    "0: alice 100000\n",
			wantErr: "getsubids line 1: want",
		},
		{
			name:    "five fields",
			text:    "0: alice 100000 65536 x\n",
			wantErr: "getsubids line 1: want",
		},
		{
			name:    "index without colon",
			text:    "0: alice 1 1\n1 alice 100000 65536\n",
			wantErr: "getsubids line 2: want",
		},
		{
			name:    "bad start",
			text:    "\n0: alice x 65536\n",
			wantErr: "getsubids line 2: start",
		},
		{
			name:    "bad count",
			text:    "0: alice 100000 -5\n",
			wantErr: "getsubids line 1: count",
		},
		{
			name:    "past MaxID",
			text:    "0: alice 4294967290 6\n",
			wantErr: "getsubids line 1: range",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idmap.ParseGetsubids(strings.NewReader(tt.text))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseGetsubids() = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGetsubids(): %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseGetsubids() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUsable(t *testing.T) {
	many := make([]idmap.Range, 400)
	for i := range many {
		many[i] = idmap.Range{Start: 100000 + uint32(i)*10, Count: 10}
	}
	tests := []struct {
		name   string
		caller uint32
		subs   []idmap.Range
		want   []idmap.Range
	}{
		{
			name: "none", caller: 1000, subs: nil, want: nil,
		},
		{
			name: "kept as given", caller: 1000,
			subs: []idmap.Range{{Start: 200000, Count: 10}, {Start: 100000, Count: 65536}},
			want: []idmap.Range{{Start: 200000, Count: 10}, {Start: 100000, Count: 65536}},
		},
		{
			name: "zero count dropped", caller: 1000,
			subs: []idmap.Range{{Start: 5000, Count: 0}, {Start: 100000, Count: 1}},
			want: []idmap.Range{{Start: 100000, Count: 1}},
		},
		{
			name: "range holding the caller dropped", caller: 100005,
			subs: []idmap.Range{{Start: 100000, Count: 10}, {Start: 200000, Count: 10}},
			want: []idmap.Range{{Start: 200000, Count: 10}},
		},
		{
			name: "ranges touching the caller kept", caller: 1000,
			subs: []idmap.Range{{Start: 990, Count: 10}, {Start: 1001, Count: 10}},
			want: []idmap.Range{{Start: 990, Count: 10}, {Start: 1001, Count: 10}},
		},
		{
			name: "overlap with an earlier range dropped", caller: 1000,
			subs: []idmap.Range{
				{Start: 100000, Count: 100}, {Start: 100050, Count: 100}, // overlaps the first
				{Start: 100100, Count: 100}, // adjacent: kept
				{Start: 99000, Count: 2000}, // covers both
			},
			want: []idmap.Range{{Start: 100000, Count: 100}, {Start: 100100, Count: 100}},
		},
		{
			name: "total capped at MaxID", caller: 0,
			subs: []idmap.Range{{Start: 1, Count: 1<<32 - 2}, {Start: idmap.MaxID, Count: 1}},
			want: []idmap.Range{{Start: 1, Count: idmap.MaxID - 1}},
		},
		{
			name: "last range capped, then stop", caller: 0,
			subs: []idmap.Range{{Start: 10, Count: 10}, {Start: 20, Count: idmap.MaxID - 19}, {Start: 1, Count: 9}, {Start: 0, Count: 0}},
			want: []idmap.Range{{Start: 10, Count: 10}, {Start: 20, Count: idmap.MaxID - 19}, {Start: 1, Count: 8}},
		},
		{
			// One line for the caller, two for KeepID to split off.
			name: "at most MaxLines-3 ranges", caller: 1000,
			subs: many,
			want: many[:idmap.MaxLines-3],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idmap.Usable(tt.caller, tt.subs)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Usable() = %v, want %v", got, tt.want)
			}
			if err := idmap.Rootful(tt.caller, got).Validate(); err != nil {
				t.Errorf("Rootful(Usable()): %v", err)
			}
		})
	}
}

// refSubID is the reference for the differential fuzz test: the
// subuid(5) format read the plainest way, strings.Split on lines and on
// colons, accepting only what is unambiguously well formed. It reports
// wellFormed=false for any other input, where the differential says
// nothing.
//
// rootlesskit has its own parser (pkg/parent/idtools), but its only
// exported entry point, GetSubIDRanges, reads the fixed paths /etc/subuid
// and /etc/subgid, so it cannot be fed fuzz input.
func refSubID(text, name string, uid uint32) (out []idmap.Range, wellFormed bool) {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || f[0] == "" {
			return nil, false
		}
		r, ok := refRange(f[1], f[2])
		if !ok {
			return nil, false
		}
		if (f[0] == strconv.FormatUint(uint64(uid), 10) || (name != "" && f[0] == name)) && r.Count > 0 {
			out = append(out, r)
		}
	}
	return out, true
}

// refGetsubids is refSubID's counterpart for getsubids(1) output.
func refGetsubids(text string) (out []idmap.Range, wellFormed bool) {
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 || !digits(strings.TrimSuffix(f[0], ":")) || !strings.HasSuffix(f[0], ":") {
			return nil, false
		}
		r, ok := refRange(f[2], f[3])
		if !ok {
			return nil, false
		}
		if r.Count > 0 {
			out = append(out, r)
		}
	}
	return out, true
}

// refRange accepts plain decimal start and count whose range fits below
// MaxID.
func refRange(startS, countS string) (idmap.Range, bool) {
	if !digits(startS) || !digits(countS) {
		return idmap.Range{}, false
	}
	start, err1 := strconv.ParseUint(startS, 10, 64)
	count, err2 := strconv.ParseUint(countS, 10, 64)
	if err1 != nil || err2 != nil || start > 1<<32-1 || count > 1<<32-1 {
		return idmap.Range{}, false
	}
	if count > 0 && start+count-1 > idmap.MaxID {
		return idmap.Range{}, false
	}
	return idmap.Range{Start: uint32(start), Count: uint32(count)}, true
}

func digits(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func checkRanges(t *testing.T, rs []idmap.Range) {
	t.Helper()
	for _, r := range rs {
		if r.Count == 0 || uint64(r.Start)+uint64(r.Count)-1 > idmap.MaxID {
			t.Fatalf("returned range %+v is empty or runs past MaxID", r)
		}
	}
}

func FuzzParseSubID(f *testing.F) {
	f.Add("alice:100000:65536\n", "alice", uint32(1000))
	f.Add("1000:100000:65536\nbob:1:2\n", "", uint32(1000))
	f.Add("# c\n\nalice:0:4294967295\nalice:4294967294:1\n", "alice", uint32(1))
	f.Add("alice:100000\n", "alice", uint32(1000))
	f.Add("bob:x:y\n  alice : 1 : 2 \r\n", "alice", uint32(0))
	f.Add("alice:4294967295:1\n", "alice", uint32(1000))
	f.Fuzz(func(t *testing.T, text, name string, uid uint32) {
		got, err := idmap.ParseSubID(strings.NewReader(text), name, uid)
		if err != nil {
			if got != nil {
				t.Fatalf("ranges %v returned with error %v", got, err)
			}
		}
		checkRanges(t, got)
		if len(text) >= 1<<20 { // past the scanner's line limit; the reference has none
			return
		}
		want, ok := refSubID(text, name, uid)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("ParseSubID(%q, %q, %d): %v; the reference parses it as %v", text, name, uid, err, want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ParseSubID(%q, %q, %d) = %v, reference %v", text, name, uid, got, want)
		}
	})
}

func FuzzParseGetsubids(f *testing.F) {
	f.Add("0: alice 100000 65536\n")
	f.Add("0: alice 100000 65536\n1: alice 200000 0\n\n2: 1000 1 1")
	f.Add("Error fetching ranges\n")
	f.Add("0: alice 4294967290 6\n")
	f.Add("x: a 1 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := idmap.ParseGetsubids(strings.NewReader(text))
		if err != nil && got != nil {
			t.Fatalf("ranges %v returned with error %v", got, err)
		}
		checkRanges(t, got)
		if len(text) >= 64<<10 { // past bufio.Scanner's default line limit
			return
		}
		want, ok := refGetsubids(text)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("ParseGetsubids(%q): %v; the reference parses it as %v", text, err, want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ParseGetsubids(%q) = %v, reference %v", text, got, want)
		}
	})
}
