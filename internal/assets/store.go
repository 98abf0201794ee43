package assets

import (
	"context"

	"github.com/trellisdag/trellis/storage"
)

// Store is what the asset operations need of a state store.
type Store interface {
	// Assets lists the assets with their latest events; PostAssetEvent
	// records an event.
	Assets(ctx context.Context) ([]storage.Asset, error)
	PostAssetEvent(ctx context.Context, e storage.AssetEvent) (id int64, err error)
}
