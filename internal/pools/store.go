package pools

import (
	"context"

	"github.com/trellisdag/trellis/storage"
)

// Store is what the pool operations need of a state store.
type Store interface {
	// PoolSlots returns the pool sizes set at run time; SetPoolSlots sets one.
	PoolSlots(ctx context.Context) (map[string]int, error)
	SetPoolSlots(ctx context.Context, name string, slots int) error
	// ActiveRuns and TaskInstancesOfRuns give the tries in flight.
	ActiveRuns(ctx context.Context) ([]storage.Run, error)
	TaskInstancesOfRuns(ctx context.Context, runs []int64) (map[int64][]storage.TaskInstance, error)
}
