package task

import (
	"fmt"
	"slices"
	"strings"
)

// MaxAssetURI bounds an asset URI's length.
const MaxAssetURI = 1024

// Outlets declares the assets (Airflow's datasets: URIs such as
// s3://bucket/orders/ or warehouse://sales.orders) the task updates: every
// successful try records an event for each, in the same commit as its
// success, and DAGs scheduled on those assets run when they have new events.
func Outlets(uris ...string) Option {
	return func(d *Def) {
		for _, u := range uris {
			if err := ValidAssetURI(u); err != nil {
				d.fail("outlet: %v", err)
				continue
			}
			if !slices.Contains(d.outlets, u) {
				d.outlets = append(d.outlets, u)
			}
		}
	}
}

// OutletsOf returns the assets a task updates.
func OutletsOf(t Task) []string { return slices.Clone(t.def().outlets) }

// ValidAssetURI checks an asset URI: not empty, at most MaxAssetURI bytes, no
// whitespace or control characters.
func ValidAssetURI(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("asset URI is empty")
	case len(u) > MaxAssetURI:
		return fmt.Errorf("asset URI %.40q… is %d bytes, more than %d", u, len(u), MaxAssetURI)
	case strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("asset URI %q has whitespace or a control character", u)
	}
	return nil
}
