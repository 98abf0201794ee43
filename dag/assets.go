package dag

import (
	"slices"

	"github.com/trellisdag/trellis/task"
)

// ScheduleOnAssets runs the DAG when every one of the assets (URIs that tasks
// of this or another DAG of the binary declare with task.Outlets, or that
// another system posts through the API) has had an event since the DAG's last
// asset-triggered run, as Airflow's schedule=[Asset(...), ...]. With a
// Schedule too, the DAG runs on either (Airflow's AssetOrTimeSchedule).
func ScheduleOnAssets(uris ...string) Option { return onAssets(false, uris) }

// ScheduleOnAnyAsset runs the DAG when any one of the assets has had an event
// since its last asset-triggered run (Airflow's Asset | Asset).
func ScheduleOnAnyAsset(uris ...string) Option { return onAssets(true, uris) }

func onAssets(anyOf bool, uris []string) Option {
	return func(d *DAG) {
		if len(uris) == 0 {
			d.fail("schedule on assets: no asset")
			return
		}
		if len(d.assets) > 0 {
			d.fail("schedule on assets: given twice")
			return
		}
		for _, u := range uris {
			if err := task.ValidAssetURI(u); err != nil {
				d.fail("schedule on assets: %v", err)
				return
			}
			if !slices.Contains(d.assets, u) {
				d.assets = append(d.assets, u)
			}
		}
		d.anyAsset = anyOf
	}
}

// AssetSchedule returns the assets the DAG is scheduled on (none: not on
// assets) and whether any one of them suffices.
func (d *DAG) AssetSchedule() (uris []string, anyOf bool) { return slices.Clone(d.assets), d.anyAsset }
