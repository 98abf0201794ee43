package dag

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Version identifies the DAG's definition: a hash of what scheduling depends
// on (its tasks, their kinds, edges, trigger rules and settings, the schedule
// and the DAG's settings), leaving out descriptions, docs and tags. Runs record
// the version they were created with, so that a change between deploys can be
// seen and old runs shown as the graph they ran with. Call it once the DAG is
// complete (after Add).
func (d *DAG) Version() string {
	s := d.Snapshot()
	s.Description, s.Doc, s.Tags = "", "", nil
	for i := range s.Tasks {
		s.Tasks[i].Doc = ""
	}
	for i := range s.Params {
		s.Params[i].Description = ""
	}
	b, err := json.Marshal(s)
	if err != nil { // a snapshot is plain data; this does not happen
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}
