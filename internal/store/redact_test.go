package store

import "testing"

// TestRedact: a DSN's password never reaches a message; a file path is kept.
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?search_path=s": "postgres://u:xxxxx@h:5432/db?search_path=s",
		"postgresql://u@h/db":                         "postgresql://u@h/db",
		"/data/trellis.db":                            "/data/trellis.db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
