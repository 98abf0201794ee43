package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/trellisdag/trellis/internal/assets"
	"github.com/trellisdag/trellis/storage"
)

// Asset is an asset (Airflow's dataset) with its producers, consumers and
// events.
type Asset struct {
	URI string `json:"uri"`
	// Producers are the tasks that update it ("dag.task"); Consumers the DAGs
	// scheduled on it.
	Producers []string   `json:"producers"`
	Consumers []string   `json:"consumers"`
	Events    int        `json:"events"`
	LastEvent *time.Time `json:"lastEvent,omitempty"`
}

// AssetList is the answer of GET /assets.
type AssetList struct {
	Assets []Asset `json:"assets"`
}

// AssetEvent is one update of an asset.
type AssetEvent struct {
	ID  int64     `json:"id"`
	URI string    `json:"uri"`
	At  time.Time `json:"at"`
	// SourceDAG, SourceRun, SourceTask and SourceTry name the try that
	// recorded it; Source who posted it from outside.
	SourceDAG  string          `json:"sourceDagId,omitempty"`
	SourceRun  string          `json:"sourceRunId,omitempty"`
	SourceTask string          `json:"sourceTaskId,omitempty"`
	SourceTry  int             `json:"sourceTry,omitempty"`
	Source     string          `json:"source,omitempty"`
	Extra      json.RawMessage `json:"extra,omitempty"`
}

// AssetEventList is a page of asset events, newest first.
type AssetEventList struct {
	Events []AssetEvent `json:"events"`
	Total  int          `json:"total"`
	Limit  int          `json:"limit"`
	Offset int          `json:"offset"`
}

// AssetEventRequest is the body of POST /assets/events: an event from
// outside (another team's runner, a CI job).
type AssetEventRequest struct {
	URI   string          `json:"uri"`
	Extra json.RawMessage `json:"extra,omitempty"`
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	list, err := assets.List(r.Context(), s.st, s.order)
	if err != nil {
		return err
	}
	out := AssetList{Assets: make([]Asset, 0, len(list))}
	for _, a := range list {
		x := Asset{URI: a.URI, Producers: a.Producers, Consumers: a.Consumers, Events: a.Events}
		if x.Producers == nil {
			x.Producers = []string{}
		}
		if x.Consumers == nil {
			x.Consumers = []string{}
		}
		if !a.LastEvent.IsZero() {
			t := a.LastEvent
			x.LastEvent = &t
		}
		out.Assets = append(out.Assets, x)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func assetEventOf(e storage.AssetEvent) AssetEvent {
	return AssetEvent{ID: e.ID, URI: e.URI, At: e.Created, SourceDAG: e.SourceDAG, SourceRun: e.SourceRun,
		SourceTask: e.SourceTask, SourceTry: e.SourceTry, Source: e.Source, Extra: e.Extra}
}

func (s *Server) listAssetEvents(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	limit, err := intQuery(r, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	offset, err := intQuery(r, "offset", 0, 0, 1<<31-1)
	if err != nil {
		return err
	}
	evs, total, err := s.st.AssetEvents(r.Context(), r.URL.Query().Get("uri"), limit, offset)
	if err != nil {
		return err
	}
	out := AssetEventList{Events: make([]AssetEvent, 0, len(evs)), Total: total, Limit: limit, Offset: offset}
	for _, e := range evs {
		out.Events = append(out.Events, assetEventOf(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) postAssetEvent(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req AssetEventRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var bad *assets.InvalidError
	if err := assets.Check(req.URI, req.Extra); errors.As(err, &bad) {
		if bad.Field == "extra" {
			return badParam("extra", "extra: want a JSON object")
		}
		return badParam("uri", "%v", bad.Err)
	}
	source := "api"
	if p != nil {
		source = "api:" + p.Name
	}
	now := s.now()
	id, err := assets.Post(r.Context(), s.st, req.URI, req.Extra, source, now)
	s.audit(r, p, "post_asset_event", "", "", "", req.URI, err)
	if err != nil {
		return fmt.Errorf("asset %q: %w", req.URI, err)
	}
	s.cache.invalidate()
	s.cfg.Wake() // DAGs scheduled on the asset run at once
	s.hub.action("post_asset_event", "", "", "")
	writeJSON(w, http.StatusCreated, AssetEvent{ID: id, URI: req.URI, At: now, Source: source, Extra: req.Extra})
	return nil
}
