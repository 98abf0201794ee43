package runner

import (
	"github.com/trellisdag/trellis/internal/assets"
	"github.com/trellisdag/trellis/internal/pools"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/web"
)

// The store (SQLite or PostgreSQL) is every seam its users declare.
var (
	_ scheduler.Store = (*store.Store)(nil)
	_ web.Store       = (*store.Store)(nil)
	_ runs.Store      = (*store.Store)(nil)
	_ pools.Store     = (*store.Store)(nil)
	_ assets.Store    = (*store.Store)(nil)
)
