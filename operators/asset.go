package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/trellisdag/trellis/task"
)

// AssetEventSpec says where PostAssetEvent posts.
type AssetEventSpec struct {
	// RunnerURL is the other runner's base URL (its UI/API address).
	RunnerURL string
	// URI is the asset (a template: task.TemplateData's fields).
	URI string
	// TokenFile holds an operator token of the other runner (a mounted
	// Secret); it is read at every try, so a rotated token is used at once.
	TokenFile string
	// Extra is a JSON object stored with the event (optional).
	Extra json.RawMessage
	// Client defaults to one with a 30 s timeout.
	Client *http.Client
}

// PostedEvent is PostAssetEvent's result.
type PostedEvent struct {
	ID  int64  `json:"id"`
	URI string `json:"uri"`
}

// PostAssetEvent returns a task that records an event of an asset in another
// runner through its REST API (POST /api/v1/assets/events with an operator
// token), so that another team's DAGs scheduled on the asset run without
// sharing a database. A refused token or a server error fails the try
// (retries apply); an invalid URI or body fails it at once.
func PostAssetEvent(id string, spec AssetEventSpec, opts ...task.Option) *task.GoTask[PostedEvent] {
	tmpl, err := task.ParseTemplate(id, spec.URI)
	if err != nil {
		opts = append(opts, task.Invalid(fmt.Errorf("post asset event %q: uri: %w", id, err)))
	}
	if _, err := url.Parse(spec.RunnerURL); err != nil || spec.RunnerURL == "" {
		opts = append(opts, task.Invalid(fmt.Errorf("post asset event %q: runner URL %q: want an http(s) URL", id, spec.RunnerURL)))
	}
	client := spec.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return task.Go(id, func(ctx context.Context, r *task.Run) (PostedEvent, error) {
		uri, err := r.Render(tmpl)
		if err != nil {
			return PostedEvent{}, fmt.Errorf("%w: uri: %v", task.ErrFailNow, err)
		}
		if err := task.ValidAssetURI(uri); err != nil {
			return PostedEvent{}, fmt.Errorf("%w: %v", task.ErrFailNow, err)
		}
		body, err := json.Marshal(struct {
			URI   string          `json:"uri"`
			Extra json.RawMessage `json:"extra,omitempty"`
		}{uri, spec.Extra})
		if err != nil {
			return PostedEvent{}, fmt.Errorf("%w: extra: %v", task.ErrFailNow, err)
		}
		endpoint := strings.TrimRight(spec.RunnerURL, "/") + "/api/v1/assets/events"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return PostedEvent{}, fmt.Errorf("%w: %v", task.ErrFailNow, err)
		}
		req.Header.Set("Content-Type", "application/json")
		if spec.TokenFile != "" {
			tok, err := os.ReadFile(spec.TokenFile)
			if err != nil {
				return PostedEvent{}, fmt.Errorf("token file: %w", err)
			}
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		}
		res, err := client.Do(req)
		if err != nil {
			return PostedEvent{}, fmt.Errorf("post the event of %s to %s: %w", uri, req.URL.Host, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		if res.StatusCode != http.StatusCreated {
			err := fmt.Errorf("post the event of %s to %s: %s: %s", uri, req.URL.Host, res.Status, strings.TrimSpace(string(b)))
			if res.StatusCode == http.StatusBadRequest {
				err = fmt.Errorf("%w: %v", task.ErrFailNow, err)
			}
			return PostedEvent{}, err
		}
		var out PostedEvent
		if err := json.Unmarshal(b, &out); err != nil {
			return PostedEvent{}, fmt.Errorf("post the event of %s: the answer: %w", uri, err)
		}
		fmt.Fprintf(r.Output(), "recorded event %d of %s in %s\n", out.ID, uri, req.URL.Host)
		return out, nil
	}, opts...)
}
