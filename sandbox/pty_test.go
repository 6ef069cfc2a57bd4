package sandbox

import "testing"

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
