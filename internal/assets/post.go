package assets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// InvalidError says which part of an asset event cannot be recorded: Field
// is "uri" or "extra".
type InvalidError struct {
	Field string
	Err   error
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *InvalidError) Unwrap() error { return e.Err }

// errNotObject is the cause of an extra that is not a JSON object.
var errNotObject = errors.New("want a JSON object")

// Check says whether an event from outside can be recorded: a valid URI and,
// when given, an extra that is a JSON object. The CLI calls it before it
// opens the database; Post calls it again.
func Check(uri string, extra json.RawMessage) error {
	if err := task.ValidAssetURI(uri); err != nil {
		return &InvalidError{Field: "uri", Err: err}
	}
	if len(extra) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(extra, &obj); err != nil {
			return &InvalidError{Field: "extra", Err: fmt.Errorf("%w: %v", errNotObject, err)}
		}
	}
	return nil
}

// Post records an event of an asset from outside a run (the CLI, the API),
// naming who posted it in source, and returns its id. DAGs scheduled on the
// asset run at the scheduler's next look.
func Post(ctx context.Context, st Store, uri string, extra json.RawMessage, source string, at time.Time) (int64, error) {
	if err := Check(uri, extra); err != nil {
		return 0, err
	}
	return st.PostAssetEvent(ctx, storage.AssetEvent{URI: uri, Source: source, Extra: extra, Created: at})
}
