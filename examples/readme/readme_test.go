package main

import (
	"os"
	"strings"
	"testing"
)

// TestSameAsREADME: the README's "Writing a DAG" program is this package's
// main.go (after its doc comment), so the README's snippet always compiles.
func TestSameAsREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Writing a DAG")
	if !ok {
		t.Fatal(`README.md has no "## Writing a DAG" section`)
	}
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal(`README.md's "Writing a DAG" has no go block`)
	}
	block, _, _ = strings.Cut(block, "```")
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, code, ok := strings.Cut(string(src), "\npackage main\n")
	if !ok || "package main\n"+code != block {
		t.Errorf("examples/readme/main.go and the README's snippet differ; README:\n%s", block)
	}
}
