package task

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ParamsAs returns the run's params (the DAG's defaults overlaid with the run's
// conf, checked when the run was triggered) decoded into P, the struct given
// to dag.TypedParams:
//
//	p, err := task.ParamsAs[ReportParams](r)
//	if err != nil {
//		return "", err
//	}
//	for d := range p.Days { ... } // an int, as declared
//
// A param that P has no field for is an error (a misspelled json tag would
// otherwise read as the zero value), so P is normally the declared struct.
func ParamsAs[P any](r *Run) (P, error) {
	var p P
	b, err := json.Marshal(r.params)
	if err != nil {
		return p, fmt.Errorf("task %q: encode the params: %w", r.task.id, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("task %q: decode the params as %T: %w", r.task.id, p, err)
	}
	return p, nil
}
