package web

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

// TestAssetsAPI: the assets list names producers and consumers; an operator
// posts an external event (audited, 201) and the DAG scheduled on the asset
// runs once; a viewer cannot post; a bad URI or extra is a 400 naming the
// field; events page newest first.
func TestAssetsAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{tokens: true, cron: true, dags: func(s *stack) []*dag.DAG {
		prod := dag.New("prod")
		prod.Add(task.Go("write", func(context.Context, *task.Run) (int, error) { return 1, nil }, task.Outlets("s3://lake/orders")))
		cons := dag.New("cons", dag.ScheduleOnAssets("s3://lake/orders"))
		cons.Add(task.Go("read", func(context.Context, *task.Run) (int, error) { return 2, nil }))
		return []*dag.DAG{prod, cons}
	}})
	var list AssetList
	if res := s.do("GET", "/api/v1/assets", nil, &list, bearer(viewerToken)); res.StatusCode != 200 {
		t.Fatalf("list: %d", res.StatusCode)
	}
	if len(list.Assets) != 1 || list.Assets[0].URI != "s3://lake/orders" || strings.Join(list.Assets[0].Producers, ",") != "prod.write" ||
		strings.Join(list.Assets[0].Consumers, ",") != "cons" || list.Assets[0].Events != 0 {
		t.Fatalf("assets = %+v", list.Assets)
	}
	s.expectError(s.do("POST", "/api/v1/assets/events", `{"uri":"s3://lake/orders"}`, nil, bearer(viewerToken)), 403, CodeForbidden, "")
	s.expectError(s.do("POST", "/api/v1/assets/events", `{"uri":"has space"}`, nil, bearer(operatorToken)), 400, CodeBadRequest, "uri")
	s.expectError(s.do("POST", "/api/v1/assets/events", `{"uri":"s3://x","extra":[1]}`, nil, bearer(operatorToken)), 400, CodeBadRequest, "extra")

	var ev AssetEvent
	if res := s.do("POST", "/api/v1/assets/events", `{"uri":"s3://lake/orders","extra":{"rows":42}}`, &ev, bearer(operatorToken)); res.StatusCode != 201 ||
		ev.ID == 0 || ev.Source != "api:alice" || string(ev.Extra) != `{"rows":42}` {
		t.Fatalf("post: %d %+v", res.StatusCode, ev)
	}
	s.waitFor("the asset-triggered run of cons", 30*time.Second, func() bool {
		rs, err := s.st.Runs(context.Background(), store.RunFilter{DAGID: "cons"})
		return err == nil && len(rs) == 1 && rs[0].State == task.RunSuccess && rs[0].Type == task.RunAssetTriggered
	})
	var evs AssetEventList
	s.do("GET", "/api/v1/assets/events?uri="+"s3://lake/orders", nil, &evs, bearer(viewerToken))
	if evs.Total != 1 || evs.Events[0].ID != ev.ID {
		t.Errorf("events = %+v", evs)
	}
	var audit AuditList
	s.do("GET", "/api/v1/audit", nil, &audit, bearer(viewerToken))
	if len(audit.Entries) == 0 || audit.Entries[0].Action != "post_asset_event" || audit.Entries[0].Detail != "s3://lake/orders" {
		t.Errorf("audit = %+v", audit.Entries)
	}
	// Only one run for one event, however often the scheduler looks.
	s.sched.Wake()
	s.do("GET", "/api/v1/assets", nil, &list, bearer(viewerToken))
	if list.Assets[0].Events != 1 || list.Assets[0].LastEvent == nil {
		t.Errorf("after the event: %+v", list.Assets[0])
	}
	if rs, _ := s.st.Runs(context.Background(), store.RunFilter{DAGID: "cons"}); len(rs) != 1 {
		t.Errorf("cons has %d runs for one event", len(rs))
	}
}

// TestPostAssetEventAcrossRunners: a task of another team's binary
// (operators.PostAssetEvent) posts an event to this runner's API with an
// operator token read from a file; this runner's DAG scheduled on the asset
// runs. A viewer token is refused and fails the try.
func TestPostAssetEventAcrossRunners(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{tokens: true, cron: true, dags: func(s *stack) []*dag.DAG {
		cons := dag.New("cons", dag.ScheduleOnAssets("warehouse://sales.orders"))
		cons.Add(task.Go("read", func(context.Context, *task.Run) (int, error) { return 2, nil }))
		return []*dag.DAG{cons}
	}})
	dir := t.TempDir()
	for name, tok := range map[string]string{"operator": operatorToken, "viewer": viewerToken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	post := func(tokenFile string) ([]byte, error) {
		p := operators.PostAssetEvent("publish", operators.AssetEventSpec{RunnerURL: s.hs.URL, URI: "warehouse://sales.orders",
			TokenFile: filepath.Join(dir, tokenFile), Extra: json.RawMessage(`{"day":"{{ .DS }}"}`)})
		other := dag.New("other_team")
		other.Add(p)
		if err := other.Validate(); err != nil {
			t.Fatal(err)
		}
		r := task.NewRun(p, task.Info{DAGID: "other_team", TaskID: "publish"}, nil, nil, nil, nil)
		return p.Execute(context.Background(), r)
	}
	if _, err := post("viewer"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("with a viewer token: %v, want a 403 error", err)
	}
	out, err := post("operator")
	if err != nil || !strings.Contains(string(out), `"uri":"warehouse://sales.orders"`) {
		t.Fatalf("with an operator token: %s, %v", out, err)
	}
	s.waitFor("the asset-triggered run of cons", 30*time.Second, func() bool {
		rs, err := s.st.Runs(context.Background(), store.RunFilter{DAGID: "cons"})
		return err == nil && len(rs) == 1 && rs[0].State == task.RunSuccess
	})
	evs, _, err := s.st.AssetEvents(context.Background(), "warehouse://sales.orders", 10, 0)
	if err != nil || len(evs) != 1 || evs[0].Source != "api:alice" {
		t.Errorf("events = %+v, %v", evs, err)
	}
}
