package assets

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// Asset is an asset with who updates it and who is scheduled on it.
type Asset struct {
	URI string
	// Producers are the tasks that update it, as "dag.task".
	Producers []string
	// Consumers are the DAGs scheduled on it.
	Consumers []string
	// Events counts its events; LastEvent is the newest one's time.
	Events    int
	LastEvent time.Time
}

// List returns every asset the DAGs name or the store has events of, by URI
// (st nil: no database yet).
func List(ctx context.Context, st Store, dags []*dag.DAG) ([]Asset, error) {
	by := map[string]*Asset{}
	get := func(u string) *Asset {
		if by[u] == nil {
			by[u] = &Asset{URI: u}
		}
		return by[u]
	}
	for _, d := range dags {
		for _, t := range d.Tasks() {
			for _, u := range task.OutletsOf(t) {
				a := get(u)
				a.Producers = append(a.Producers, d.ID()+"."+t.ID())
			}
		}
		uris, _ := d.AssetSchedule()
		for _, u := range uris {
			a := get(u)
			a.Consumers = append(a.Consumers, d.ID())
		}
	}
	if st != nil {
		stored, err := st.Assets(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range stored {
			a := get(s.URI)
			a.Events, a.LastEvent = s.Events, s.LastEvent
		}
	}
	out := make([]Asset, 0, len(by))
	for _, u := range slices.Sorted(maps.Keys(by)) {
		a := by[u]
		slices.Sort(a.Producers)
		slices.Sort(a.Consumers)
		out = append(out, *a)
	}
	return out, nil
}
