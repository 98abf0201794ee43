package dag

import (
	"fmt"

	"github.com/robfig/cron/v3"
)

func (d *DAG) validateSchedule() error {
	switch d.schedule {
	case "", "@once", "@none":
		return nil
	}
	if _, err := cron.ParseStandard(d.schedule); err != nil {
		return fmt.Errorf("schedule %q: %w", d.schedule, err)
	}
	return nil
}
