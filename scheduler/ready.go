package scheduler

import "container/heap"

// ready holds the tasks whose dependencies are met and that wait for a slot, in
// buckets by DAG and pool, so that a full pool or a DAG at its max active tasks
// does not make the scheduler scan the tasks it cannot start.
type ready struct {
	buckets map[bucketKey]*readyHeap
	seq     uint64
}

type bucketKey struct {
	plan *plan
	pool string
}

type readyItem struct {
	run    *runState
	task   int
	weight int
	seq    uint64
}

type readyHeap []readyItem

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].weight != h[j].weight {
		return h[i].weight > h[j].weight
	}
	return h[i].seq < h[j].seq
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(readyItem)) }
func (h *readyHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (r *ready) push(rs *runState, i int) {
	if r.buckets == nil {
		r.buckets = map[bucketKey]*readyHeap{}
	}
	t := rs.tis[i].of
	k := bucketKey{rs.plan, rs.plan.pool[t]}
	h := r.buckets[k]
	if h == nil {
		h = &readyHeap{}
		r.buckets[k] = h
	}
	r.seq++
	heap.Push(h, readyItem{run: rs, task: i, weight: rs.plan.weight[t], seq: r.seq})
}

// pop returns the highest-priority item among the buckets that can start now.
func (r *ready) pop(canStart func(bucketKey, readyItem) bool) (readyItem, bool) {
	var best *readyHeap
	var bestKey bucketKey
	for k, h := range r.buckets {
		if h.Len() == 0 {
			delete(r.buckets, k)
			continue
		}
		if !canStart(k, (*h)[0]) {
			continue
		}
		if best == nil || (*h)[0].weight > (*best)[0].weight ||
			((*h)[0].weight == (*best)[0].weight && (*h)[0].seq < (*best)[0].seq) {
			best, bestKey = h, k
		}
	}
	if best == nil {
		return readyItem{}, false
	}
	it := heap.Pop(best).(readyItem)
	if best.Len() == 0 {
		delete(r.buckets, bestKey)
	}
	return it, true
}
