package notify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTailAndHeadCutOnRuneBoundaries(t *testing.T) {
	s := "aé€😀z" // 1, 2, 3, 4 and 1 bytes
	for n := 0; n <= len(s)+1; n++ {
		tl, tcut := tail(s, n)
		hd, hcut := head(s, n)
		if len(tl) > n || len(hd) > n || !utf8.ValidString(tl) || !utf8.ValidString(hd) {
			t.Errorf("n=%d: tail %q, head %q", n, tl, hd)
		}
		if !strings.HasSuffix(s, tl) || !strings.HasPrefix(s, hd) {
			t.Errorf("n=%d: tail %q is not an end, or head %q not a start", n, tl, hd)
		}
		if want := n < len(s); tcut != want || hcut != want {
			t.Errorf("n=%d: cut = %v, %v, want %v", n, tcut, hcut, want)
		}
		// Nothing that fits is dropped: one more rune would not fit.
		if len(tl) < len(s) {
			_, w := utf8.DecodeLastRuneInString(s[:len(s)-len(tl)])
			if len(tl)+w <= n {
				t.Errorf("n=%d: tail %q drops a rune that fits", n, tl)
			}
		}
	}
}

func TestSlackFitCountsEscapes(t *testing.T) {
	s := strings.Repeat("&", 10) + "end"
	got, cut := slackFit(s, 13, true)
	if got != "&amp;&amp;end" || !cut {
		t.Errorf("slackFit from the end = %q, %v", got, cut)
	}
	got, cut = slackFit(s, 12, false)
	if got != "&amp;&amp;" || !cut {
		t.Errorf("slackFit from the start = %q, %v", got, cut)
	}
	if got, cut := slackFit("a<b", 100, true); got != "a&lt;b" || cut {
		t.Errorf("slackFit = %q, %v", got, cut)
	}
}

func TestMessageID(t *testing.T) {
	a, b := messageID("k1", "x@example.com"), messageID("k1", "x@example.com")
	if a != b || a == messageID("k2", "x@example.com") {
		t.Errorf("Message-IDs %q, %q: want one per key", a, b)
	}
	if id := messageID("k1", "x@[127.0.0.1]"); !strings.HasSuffix(id, "@trellis.invalid>") {
		t.Errorf("Message-ID for an address literal = %q", id)
	}
	if r1, r2 := messageID("", "x@example.com"), messageID("", "x@example.com"); r1 == r2 {
		t.Error("Message-IDs without a key are the same")
	}
}
