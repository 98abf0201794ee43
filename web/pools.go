package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trellisdag/trellis/internal/pools"
)

// Pool is a pool with its size and occupancy.
type Pool struct {
	Name string `json:"name"`
	// Slots is the size in force; Declared is the binary's, and SetAtRunTime
	// says whether Slots was set at run time (pools set, PATCH /pools/{pool}).
	Slots        int  `json:"slots"`
	Declared     int  `json:"declared"`
	SetAtRunTime bool `json:"setAtRunTime"`
	// InUse is the slots taken by tries in flight (queued or running).
	InUse int `json:"inUse"`
	// Tasks is how many tasks of this binary's DAGs use the pool.
	Tasks int `json:"tasks"`
}

// PoolList is the answer of GET /pools.
type PoolList struct {
	Pools []Pool `json:"pools"`
}

// PoolRequest is the body of PATCH /pools/{pool}.
type PoolRequest struct {
	// Slots is the new size (0 or more, and at least the pool_slots of every
	// task of the pool).
	Slots *int `json:"slots"`
}

func (s *Server) pools() pools.Catalog { return pools.Catalog{Declared: s.cfg.Pools, DAGs: s.order} }

func (s *Server) poolList(r *http.Request) (PoolList, error) {
	list, err := s.pools().List(r.Context(), s.st)
	if err != nil {
		return PoolList{}, err
	}
	out := PoolList{Pools: make([]Pool, len(list))}
	for i, p := range list {
		out.Pools[i] = Pool{Name: p.Name, Slots: p.Slots, Declared: p.Declared, SetAtRunTime: p.SetAtRunTime, InUse: p.InUse, Tasks: p.Tasks}
	}
	return out, nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	out, err := s.poolList(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) setPool(w http.ResponseWriter, r *http.Request, p *Principal) error {
	name := r.PathValue("pool")
	var req PoolRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Slots == nil {
		return badParam("slots", "slots is required (a whole number, 0 or more)")
	}
	err := s.pools().Set(r.Context(), s.st, name, *req.Slots)
	s.audit(r, p, "set_pool", "", "", "", fmt.Sprintf("%s=%d", name, *req.Slots), err)
	var small *pools.TooSmallError
	switch {
	case errors.Is(err, pools.ErrUndeclared):
		return notFound("%v", err)
	case errors.As(err, &small):
		return badParam("slots", "%v", err)
	case err != nil && *req.Slots < 0:
		return badParam("slots", "%v", err)
	case err != nil:
		return fmt.Errorf("set pool %q: %w", name, err)
	}
	s.cache.invalidate()
	s.cfg.Wake()
	s.hub.action("set_pool", "", "", "")
	out, err := s.poolList(r)
	if err != nil {
		return err
	}
	for _, pl := range out.Pools {
		if pl.Name == name {
			writeJSON(w, http.StatusOK, pl)
			return nil
		}
	}
	return notFound("pool %q", name)
}
