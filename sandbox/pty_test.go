package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// The background filter drops what makes a terminal answer, keeps the
// rest (colours among it), and keeps its place across writes.
func TestAnswerFilter(t *testing.T) {
	in := "a\x1b[31mred\x1b[0m" + // colours stay
		"\x1b[6n\x1b[5n\x1b[c\x1b[>c\x1b[18t\x1b[?2026$p" + // status, position, attributes, window, DECRQM
		"\x1bP$qm\x1b\\" + // DECRQSS
		"\x1b]11;?\x07\x1b]52;c;?\x1b\\" + // OSC colour and clipboard queries
		"\x1b_apc\x1b\\b\x1b7c"
	want := "a\x1b[31mred\x1b[0mb\x1b7c"
	// Every split of the input into two writes gives the same.
	for i := 0; i <= len(in); i++ {
		var f answerFilter
		got := string(f.drop([]byte(in[:i]))) + string(f.drop([]byte(in[i:])))
		if got != want {
			t.Fatalf("split at %d: %q, want %q", i, got, want)
		}
	}
}

// answerCases: what the filter gives for a write, read as a terminal
// reads it (vt100.net/emu/dec_ansi_parser).
var answerCases = []struct{ name, in, want string }{
	{"text", "hello, world\r\n\ttab", "hello, world\r\n\ttab"},
	{"colours", "\x1b[1;31mred\x1b[m \x1b[38;2;1;2;3mrgb\x1b[38:2::1:2:3m", "\x1b[1;31mred\x1b[m \x1b[38;2;1;2;3mrgb\x1b[38:2::1:2:3m"},
	{"cursor and erasing", "\x1b[H\x1b[2J\x1b[10;20H\x1b[3A\x1b[K\x1b[?25l\x1b[?1049h\x1b[2 q\x1b[!p\x1b[2T", "\x1b[H\x1b[2J\x1b[10;20H\x1b[3A\x1b[K\x1b[?25l\x1b[?1049h\x1b[2 q\x1b[!p\x1b[2T"},
	{"escape sequences", "\x1b7\x1b8\x1b(B\x1b=\x1bM\x1b#8", "\x1b7\x1b8\x1b(B\x1b=\x1bM\x1b#8"},
	{"DSR", "a\x1b[6nb", "ab"},
	// ESC in an escape sequence starts a new one (the red team's
	// printf "\033\033[6n").
	{"ESC ESC", "a\x1b\x1b[6nb", "ab"},
	{"ESC ESC colour", "a\x1b\x1b[31mb", "a\x1b[31mb"},
	{"ESC intermediate ESC", "\x1b(\x1b[6n", ""},
	// ESC in a control sequence ends it and starts another.
	{"ESC in CSI", "a\x1b[\x1b[6nb", "ab"},
	{"ESC in CSI parameters", "\x1b[12;\x1b[c", ""},
	{"ESC in CSI intermediates", "\x1b[1$\x1b[6n", ""},
	// CAN and SUB end any sequence, and take effect.
	{"CAN in CSI", "\x1b[6\x18n", "\x18n"},
	{"SUB in CSI", "\x1b[6\x1an", "\x1an"},
	{"CAN then DSR", "\x1b[6\x18\x1b[6n", "\x18"},
	{"CAN in ESC", "\x1b\x18[6n", "\x18[6n"},
	{"CAN in OSC", "\x1b]0;x\x18\x1b[6n", "\x18"},
	{"CAN in DCS", "\x1bP$q\x18m", "\x18m"},
	// The 8-bit controls, raw and UTF-8-encoded.
	{"C1 CSI", "a\x9b6nb", "ab"},
	{"C1 CSI UTF-8", "a\xc2\x9b6nb", "ab"},
	{"C1 CSI colour", "\x9b31mx\xc2\x9b0m", "\x9b31mx\xc2\x9b0m"},
	{"C1 DA", "\x9bc\xc2\x9b>c", ""},
	{"C1 DCS", "\x90$qm\x9cb", "b"},
	{"C1 DCS UTF-8", "\xc2\x90$qm\xc2\x9cb", "b"},
	{"C1 OSC", "\x9d11;?\x07b\xc2\x9d11;?\xc2\x9cc", "bc"},
	{"C1 PM APC SOS", "\x9ex\x9ca\x9fx\x9cb\x98x\x9cc\xc2\x9ex\xc2\x9cd\xc2\x9fx\xc2\x9ce\xc2\x98x\xc2\x9cf", "abcdef"},
	{"C1 DECID", "a\x9ab\xc2\x9ac", "abc"},
	{"C1 others", "a\x85\x9c\xc2\x84b", "ab"},
	{"C1 in CSI", "\x1b[6\x9b6n", ""},
	{"C1 in ESC", "\x1b\xc2\x9bc", ""},
	{"ESC ST ends a string", "\x1bPq#0\x1b\\x", "x"},
	{"ESC in OSC", "\x1b]11;?\x1b[6nx", "x"},
	{"BEL ends OSC only", "\x1b]0;t\x07a\x1bPq\x07b\x1b\\c", "ac"},
	// UTF-8 text whose continuation bytes are C1 codes is text.
	{"UTF-8 text", "ś6n Đc ⛔x €", "ś6n Đc ⛔x €"},
	{"UTF-8 in sequences", "\x1b[3\xc3\xa9m", "\xc3\xa9m"},
	{"lone lead byte", "\xe2\x9b6n", "\xe2"},
	{"lone lead then ESC", "\xc5\x1b[6n\x9b6n", "\xc5"},
	{"lone lead glued", "\xc2\x1b[6n\x9b31m", "\xc2\x9b31m"},
	{"invalid bytes", "\xff\xfe\xc0\xaf\xed\xa0\x80x", "\xff\xfe\xc0\xaf\xed\xa0x"}, // 0x80: a C1 control
	// The answerback, and C0 controls inside sequences.
	{"ENQ", "a\x05b\x1b[3\x05m", "ab\x1b[3m"},
	{"C0 in CSI", "\x1b[3\n1m\x1b[6\r\nn", "\n\x1b[31m\r\n"},
	{"DEL in CSI", "\x1b[3\x7f1m", "\x1b[31m"},
	// Questions that are not DSR, DA or strings.
	{"DECID", "a\x1bZb", "ab"},
	{"DOCS", "\x1b%@\x1b%G", ""},
	{"window reports", "\x1b[21t\x1b[14t\x1b[8;1;1t", ""},
	{"DECREQTPARM", "\x1b[1x", ""},
	{"DECRQM", "\x1b[?2026$p\x1b[4$p", ""},
	{"XTVERSION", "\x1b[>q\x1b[>0q", ""},
	{"XTSMGRAPHICS", "\x1b[?1;1S", ""},
	{"kitty keyboard query", "\x1b[?u", ""},
	{"XTQMODKEYS", "\x1b[?4m", ""},
	{"DECRQCRA", "\x1b[1;1;1;1;1;1*y", ""},
	{"DECRQTSR DECRQPSR DECRQUPSS", "\x1b[1$u\x1b[1$w\x1b[&u", ""},
	{"locator", "\x1b[1'z\x1b[1'|", ""},
	{"XTREPORTSGR", "\x1b[1;1;1;1#|", ""},
	{"highlight mouse tracking", "\x1b[1;1;1;1;1T", ""},
	{"reporting modes", "\x1b[?2048h\x1b[?1000h\x1b[?25;1004h\x1b[?9h\x1b[?2031h\x1b[?1007h", ""},
	{"VT52 mode", "\x1b[?2l\x1b[?1;2l", ""},
	{"ANSI modes", "\x1b[4h\x1b[2h\x1b[12l\x1b[4l", "\x1b[4h\x1b[4l"},
	{"malformed", "\x1b[1?m\x1b[1$2m\x1b[?1:2h", ""},
	{"too long", "\x1b[" + strings.Repeat("1;", 200) + "m\x1b[" + strings.Repeat("1", 300) + "6n", ""},
	{"too long ESC", "\x1b" + strings.Repeat(" ", 300) + "7x", "x"},
	{"long enough", "\x1b[" + strings.Repeat("1;", 120) + "m", "\x1b[" + strings.Repeat("1;", 120) + "m"},
}

func TestAnswerFilterParses(t *testing.T) {
	for _, c := range answerCases {
		t.Run(c.name, func(t *testing.T) {
			var f answerFilter
			if got := string(f.drop([]byte(c.in))); got != c.want {
				t.Errorf("drop(%q) = %q, want %q", c.in, got, c.want)
			}
			// Reads split anywhere: every split in two gives the same.
			for i := 0; i <= len(c.in); i++ {
				var f answerFilter
				got := string(f.drop([]byte(c.in[:i]))) + string(f.drop([]byte(c.in[i:])))
				if got != c.want {
					t.Errorf("split at %d: %q, want %q", i, got, c.want)
				}
			}
			// Byte by byte too.
			var g answerFilter
			var got []byte
			for i := range len(c.in) {
				got = append(got, g.drop([]byte{c.in[i]})...)
			}
			if string(got) != c.want {
				t.Errorf("byte by byte: %q, want %q", got, c.want)
			}
		})
	}
}

// Text in UTF-8 goes through whole, though 0x90 and 0x9b (DCS and
// CSI as raw bytes) are among its continuation bytes.
func TestAnswerFilterUTF8(t *testing.T) {
	var text []byte
	for r := rune(0x80); r < 0x30000; r += 7 {
		if utf8.ValidRune(r) && (r < 0x80 || r > 0x9f) {
			text = utf8.AppendRune(text, r)
			if r%5 == 0 {
				text = append(text, "6nc"...)
			}
		}
	}
	for _, s := range []string{"ścieżka Đc", string(text)} {
		in := []byte(s)
		if !bytes.Contains(in, []byte{0x9b}) || !bytes.Contains(in, []byte{0x90}) {
			t.Fatalf("the text has no 0x9b or 0x90")
		}
		for i := 0; i <= len(in); i += 1 + i/64 {
			var f answerFilter
			got := append(f.drop(in[:i]), f.drop(in[i:])...)
			if !bytes.Equal(got, in) {
				t.Fatalf("split at %d: the text changed (%d bytes, want %d)", i, len(got), len(in))
			}
		}
	}
}

// For a terminal not in UTF-8 mode (the caller's locale is not UTF-8),
// the bytes of a UTF-8 character that are C1 controls start sequences.
func TestAnswerFilterEightBit(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"\xc5\x9b6n", "\xc5"},               // ś, then "6n": CSI 6 n to such a terminal
		{"\xd0\x90$qm\xc5\x9c", "\xd0"},      // DCS $ q m (DECRQSS) and its ST
		{"\xc5\x9d52;c;?\a", "\xc5"},         // OSC 52: a clipboard read
		{"caf\xe9 \x9b1m", "caf\xe9 \x9b1m"}, // Latin-1 text, and SGR kept
	} {
		f := answerFilter{eightBit: true}
		if got := string(f.drop([]byte(c.in))); got != c.want {
			t.Errorf("eight-bit drop(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for env, want := range map[string]bool{
		"LANG=en_US.UTF-8": true, "LANG=pl_PL.utf8": true, "LC_ALL=C LANG=en_US.UTF-8": false,
		"LC_CTYPE=C.UTF-8 LANG=C": true, "LANG=C": false, "": false, "LANG=de_DE.ISO-8859-1": false,
	} {
		vars := map[string]string{}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		if got := utf8Locale(func(k string) string { return vars[k] }); got != want {
			t.Errorf("utf8Locale(%s) = %v, want %v", env, got, want)
		}
	}
}

// pass, in the foreground, gives everything on: a sequence it let
// start, drop ends with CAN (always, since terminals differ on where some
// sequences end); what drop held back, pass gives on first.
func TestAnswerFilterSwitch(t *testing.T) {
	for _, c := range []struct {
		name      string
		first     string
		firstPass bool
		second    string
		want      string
	}{
		{"CSI open", "\x1b[", true, "6n", "\x1b[\x186n"},
		{"ESC open", "\x1b", true, "[6n", "\x1b\x18[6n"},
		{"C1 CSI open", "\xc2\x9b", true, "6n", "\xc2\x9b\x186n"},
		{"DCS open", "\x1bP$q", true, "m\x1b\\x", "\x1bP$q\x18mx"},
		{"UTF-8 open", "\xc2", true, "\x9b6n", "\xc2\x18"},
		{"ground", "\x1b[31m", true, "x\x1b[6n", "\x1b[31m\x18x"},
		{"held back", "\x1b[3", false, "1m", "\x1b[31m"},
		{"held UTF-8", "\x1b[3\xc5", false, "\x9b", "\x1b[3\xc5\x9b"},
		{"held query", "\x1b[6", false, "n", "\x1b[6n"},
	} {
		var f answerFilter
		var got []byte
		if c.firstPass {
			got = append(f.pass([]byte(c.first)), f.drop([]byte(c.second))...)
		} else {
			got = append(f.drop([]byte(c.first)), f.pass([]byte(c.second))...)
		}
		if string(got) != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// asked says whether the terminal may have been asked something.
func TestAnswerFilterAsked(t *testing.T) {
	for in, want := range map[string]bool{
		"plain text ś": false, "\x1b[6n": true, "\x9b6n": true, "\xc2\x9b6n": true, "\x05": true, "\x9a": true,
	} {
		var f answerFilter
		f.pass([]byte(in))
		if f.asked != want {
			t.Errorf("pass(%q): asked %v, want %v", in, f.asked, want)
		}
	}
}

// FuzzAnswerFilter: a terminal that reads the filter's output, UTF-8 or
// not, finds nothing in it that makes it answer; the filter keeps what
// it kept; the output does not depend on where reads split the input;
// and after a switch from pass to drop, nothing that ends in drop's
// output makes it answer.
func FuzzAnswerFilter(f *testing.F) {
	for _, c := range answerCases {
		f.Add([]byte(c.in), uint16(len(c.in)/2))
	}
	f.Add([]byte("\x1b[1;31mś\x1b\x1b[6n\x1b[\x1b[c\xc2\x9b5n\x90$qm\x9c\xe2\x9b6n\x1bP\x1b\\"), uint16(7))
	f.Fuzz(func(t *testing.T, in []byte, at uint16) {
		// For a terminal not in UTF-8 mode, every byte is what it is.
		e := answerFilter{eightBit: true}
		if out := e.drop(in); refAnswersIn(out, false, true, 0) != "" {
			t.Fatalf("eight-bit drop(%q) = %q: a terminal not in UTF-8 mode answers %s", in, out, refAnswersIn(out, false, true, 0))
		}
		var a answerFilter
		out := a.drop(in)
		for _, utf := range []bool{true, false} {
			if q := refAnswers(out, utf, 0); q != "" {
				t.Fatalf("drop(%q) = %q: a terminal (UTF-8 %v) answers %s", in, out, utf, q)
			}
		}
		// What drop keeps, it keeps again (with CAN x after it, so that
		// no UTF-8 character is held back at the end).
		var once, twice answerFilter
		kept := once.drop(append(in[:len(in):len(in)], "\x18x"...))
		if again := twice.drop(kept); !bytes.Equal(again, kept) {
			t.Fatalf("drop(%q) = %q, but drop of that = %q", in, kept, again)
		}
		i := int(at) % (len(in) + 1)
		var b answerFilter
		if two := append(b.drop(in[:i]), b.drop(in[i:])...); !bytes.Equal(two, out) {
			t.Fatalf("drop(%q) = %q, but split at %d: %q", in, out, i, two)
		}
		var c answerFilter
		p := c.pass(in[:i])
		if !bytes.Equal(p, in[:i]) {
			t.Fatalf("pass(%q) = %q", in[:i], p)
		}
		both := append(p, c.drop(in[i:])...)
		for _, utf := range []bool{true, false} {
			if q := refAnswers(both, utf, len(p)); q != "" {
				t.Fatalf("pass(%q), drop(%q) = %q: a terminal (UTF-8 %v) answers %s", in[:i], in[i:], both, utf, q)
			}
		}
	})
}

// refAnswers reads b as a terminal does, after the state diagram of
// vt100.net/emu/dec_ansi_parser, and returns the first thing that makes
// it answer and ends at from or after, "" if none. With utf, it decodes
// UTF-8 first (as xterm in UTF-8 mode: U+0080-U+009F are the C1
// controls, an invalid byte is U+FFFD); without, the C1 controls are
// raw bytes, but the bytes of a valid UTF-8 character are text. In a
// sequence, a character from 0xa0 is read as the one 0x80 below, and
// one beyond 0xff is skipped.
func refAnswers(b []byte, utf bool, from int) string {
	return refAnswersIn(b, utf, false, from)
}

// refAnswersIn is refAnswers; with raw, every byte is read alone, as a
// terminal not in UTF-8 mode reads it (0x9b in ś is CSI).
func refAnswersIn(b []byte, utf, raw bool, from int) string {
	type unit struct{ c, end int }
	var units []unit
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if raw {
			r, n = rune(b[i]), 1
		}
		switch {
		case raw:
			units = append(units, unit{int(b[i]), i + 1})
		case utf:
			units = append(units, unit{int(r), i + n})
		case n == 2 && r < 0xa0:
			units = append(units, unit{int(b[i]), i + 1}, unit{int(b[i+1]), i + 2})
		case n > 1:
			units = append(units, unit{0x100, i + n})
		default:
			units = append(units, unit{int(b[i]), i + 1})
		}
		i += n
	}
	const (
		ground = iota
		escape
		escInter
		csiEntry
		csiParam
		csiInter
		csiIgnore
		str // DCS, SOS, PM, APC
		osc
	)
	state := ground
	var inter, params []byte
	for _, u := range units {
		c := u.c
		found := func(what string) string {
			if u.end > from {
				return fmt.Sprintf("%s at byte %d", what, u.end)
			}
			return ""
		}
		// From anywhere.
		switch {
		case c == 0x18 || c == 0x1a:
			state = ground
			continue
		case c == 0x1b:
			state, inter, params = escape, nil, nil
			continue
		case c >= 0x80 && c <= 0x9f:
			state, inter, params = ground, nil, nil
			switch c {
			case 0x9b:
				state = csiEntry
			case 0x90, 0x98, 0x9d, 0x9e, 0x9f:
				if q := found(fmt.Sprintf("a string (C1 %#x)", c)); q != "" {
					return q
				}
				state = str
				if c == 0x9d {
					state = osc
				}
			case 0x9a:
				if q := found("DECID (C1)"); q != "" {
					return q
				}
			}
			continue
		}
		if state == ground {
			if c == 0x05 {
				if q := found("ENQ"); q != "" {
					return q
				}
			}
			continue
		}
		if c >= 0x100 {
			continue
		}
		if c >= 0xa0 {
			c -= 0x80
		}
		if c < 0x20 {
			switch {
			case c == 0x07 && state == osc:
				state = ground
			case c == 0x05 && state != str && state != osc:
				if q := found("ENQ"); q != "" {
					return q
				}
			}
			continue
		}
		if c == 0x7f {
			continue
		}
		switch state {
		case escape, escInter:
			switch {
			case c < 0x30:
				inter, state = append(inter, byte(c)), escInter
			case state == escape && (c == 'P' || c == 'X' || c == '^' || c == '_' || c == ']'):
				if q := found("a string (ESC " + string(rune(c)) + ")"); q != "" {
					return q
				}
				state = str
				if c == ']' {
					state = osc
				}
			case state == escape && c == '[':
				state = csiEntry
			default:
				state = ground
				if len(inter) == 0 && c == 'Z' || bytes.IndexByte(inter, '%') >= 0 {
					if q := found(fmt.Sprintf("ESC %s%c", inter, c)); q != "" {
						return q
					}
				}
			}
		case csiEntry, csiParam, csiInter:
			switch {
			case c >= 0x40:
				state = ground
				if what := refCSIAnswers(params, inter, byte(c)); what != "" {
					if q := found(fmt.Sprintf("%s (CSI %s%s%c)", what, params, inter, c)); q != "" {
						return q
					}
				}
			case c < 0x30:
				inter, state = append(inter, byte(c)), csiInter
			case state == csiInter || c == ':' || state == csiParam && c >= '<':
				state = csiIgnore
			default:
				params, state = append(params, byte(c)), csiParam
			}
		case csiIgnore:
			if c >= 0x40 {
				state = ground
			}
		}
	}
	return ""
}

// refCSIAnswers names what a control sequence asks, from xterm's
// ctlseqs and DEC's manuals, or "" for one that does not ask.
func refCSIAnswers(params, inter []byte, final byte) string {
	var prefix byte
	if len(params) > 0 && params[0] >= '<' {
		prefix, params = params[0], params[1:]
	}
	modes := map[int]bool{}
	for _, p := range strings.Split(string(params), ";") {
		n := 0
		for _, d := range p {
			n = min(n*10+int(d-'0'), 1<<20)
		}
		modes[n] = true
	}
	in := string(inter)
	switch {
	case final == 'n':
		return "a status report"
	case final == 'c':
		return "device attributes"
	case final == 't':
		return "window operations"
	case final == 'x':
		return "DECREQTPARM"
	case final == 'p' && (in == "$" || in == `"`):
		return "DECRQM or DECSCL"
	case final == 'S' && prefix == '?':
		return "XTSMGRAPHICS"
	case final == 'u' && (prefix == '?' || in == "$" || in == "&"):
		return "a keyboard or state query"
	case final == 'm' && prefix == '?':
		return "XTQMODKEYS"
	case final == 'q' && prefix == '>':
		return "XTVERSION"
	case final == 'y' && in == "*":
		return "DECRQCRA"
	case final == 'w' && (in == "$" || in == ","):
		return "DECRQPSR or DECRQKD"
	case (final == '|' || final == 'z' || final == '{') && in == "'":
		return "locator reports"
	case final == '|' && in == "#":
		return "XTREPORTSGR"
	case final == 'v' && in == `"`:
		return "DECRQDE"
	case final == 'T' && prefix == 0 && strings.Contains(string(params), ";"):
		return "highlight mouse tracking"
	case final == 'h' && prefix == '?' && (modes[9] || modes[1000] || modes[1001] || modes[1002] || modes[1003] || modes[1004] || modes[1007] || modes[2031] || modes[2048]):
		return "a reporting mode"
	case final == 'l' && prefix == '?' && modes[2]:
		return "VT52 mode"
	}
	return ""
}

// syncAnswers ends at the terminal's status answer in any of its forms:
// a payload may have switched the terminal to 8-bit controls (S8C1T).
func TestSyncAnswers8Bit(t *testing.T) {
	for _, answer := range []string{"\x1b[0n", "\x9b0n", "\xc2\x9b0n"} {
		m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Fatalf("open /dev/ptmx: %v", err)
		}
		defer m.Close()
		if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
			t.Fatal(err)
		}
		s, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
		if e != 0 {
			t.Fatal(e)
		}
		slave := os.NewFile(s, "slave")
		defer slave.Close()
		tio, err := unix.IoctlGetTermios(int(s), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		raw := makeRaw(*tio)
		if err := unix.IoctlSetTermios(int(s), unix.TCSETS, &raw); err != nil {
			t.Fatal(err)
		}
		m.Write([]byte(answer))
		start := time.Now()
		syncAnswers(int(s), slave)
		if d := time.Since(start); d > 150*time.Millisecond {
			t.Errorf("answer %q: syncAnswers waited %v, as for no answer", answer, d)
		}
	}
}
