package web

import (
	"context"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestPoolsAPI: the pools with their sizes, occupancy and users; an operator
// resizes a declared pool at run time (audited); an undeclared pool, a size
// below a task's pool_slots and a viewer are refused.
func TestPoolsAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{tokens: true, pools: map[string]int{"warehouse": 4}, dags: func(s *stack) []*dag.DAG {
		d := dag.New("wh")
		d.Add(task.Go("load", func(ctx context.Context, r *task.Run) (int, error) { return 1, nil }, task.Pool("warehouse"), task.PoolSlots(2)))
		return []*dag.DAG{d}
	}})
	var list PoolList
	if res := s.do("GET", "/api/v1/pools", nil, &list, bearer(viewerToken)); res.StatusCode != 200 {
		t.Fatalf("list: %d", res.StatusCode)
	}
	if len(list.Pools) != 2 || list.Pools[1] != (Pool{Name: "warehouse", Slots: 4, Declared: 4, Tasks: 1}) || list.Pools[0].Name != "default_pool" || list.Pools[0].Slots != 128 {
		t.Fatalf("pools = %+v", list.Pools)
	}
	var pl Pool
	if res := s.do("PATCH", "/api/v1/pools/warehouse", `{"slots": 6}`, &pl, bearer(operatorToken)); res.StatusCode != 200 || pl.Slots != 6 || !pl.SetAtRunTime || pl.Declared != 4 {
		t.Fatalf("set: %d %+v", res.StatusCode, pl)
	}
	if eb := s.expectError(s.do("PATCH", "/api/v1/pools/warehose", `{"slots": 6}`, nil, bearer(operatorToken)), 404, CodeNotFound, ""); !strings.Contains(eb.Error.Message, `pool "warehose" is not declared (declared: default_pool (128), warehouse (4))`) {
		t.Errorf("undeclared: %+v", eb)
	}
	if eb := s.expectError(s.do("PATCH", "/api/v1/pools/warehouse", `{"slots": 1}`, nil, bearer(operatorToken)), 400, CodeBadRequest, "slots"); !strings.Contains(eb.Error.Message, `fewer than task "load" of dag "wh" takes (2)`) {
		t.Errorf("too small: %+v", eb)
	}
	s.expectError(s.do("PATCH", "/api/v1/pools/warehouse", `{}`, nil, bearer(operatorToken)), 400, CodeBadRequest, "slots")
	s.expectError(s.do("PATCH", "/api/v1/pools/warehouse", `{"slots": 9}`, nil, bearer(viewerToken)), 403, CodeForbidden, "")
	var audit AuditList
	s.do("GET", "/api/v1/audit", nil, &audit, bearer(viewerToken))
	found := false
	for _, e := range audit.Entries {
		found = found || (e.Action == "set_pool" && e.Detail == "warehouse=6" && e.Outcome == "ok")
	}
	if !found {
		t.Errorf("the resize is not in the audit log: %+v", audit.Entries)
	}
}
