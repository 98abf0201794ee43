package dag

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/timetable"
)

// DataInterval is a run's data interval [Start, End). The run's logical date is
// Start; a scheduled run is created once End has passed.
type DataInterval = timetable.Interval

// Every sets a fixed-interval schedule (Airflow's timedelta schedule): intervals of
// d in elapsed time from the start date. It replaces Schedule.
func Every(d time.Duration) Option {
	return func(x *DAG) {
		if d <= 0 {
			x.fail("schedule: Every(%s): the interval must be positive", d)
			return
		}
		x.every, x.schedule = d, ""
	}
}

// TimezoneName sets the timezone by IANA name ("Europe/Amsterdam"); an unknown
// name is reported by Validate.
func TimezoneName(name string) Option {
	return func(x *DAG) {
		loc, err := time.LoadLocation(name)
		if err != nil || name == "" {
			x.fail("unknown timezone %q", name)
			return
		}
		x.loc = loc
	}
}

// timetable returns the DAG's timetable, built once by New.
func (d *DAG) timetable() timetable.Timetable { return d.tt }

// buildTimetable builds the timetable from the options; an invalid schedule gives
// the none timetable (Validate reports it).
func (d *DAG) buildTimetable() timetable.Timetable {
	var tt timetable.Timetable
	var err error
	if d.every > 0 {
		tt, err = timetable.Every(d.every)
	} else {
		tt, err = timetable.Parse(d.schedule, d.Location())
	}
	if err != nil {
		tt, _ = timetable.Parse("", nil)
	}
	return tt
}

func (d *DAG) validateSchedule() error {
	if d.every == 0 {
		if _, err := timetable.Parse(d.schedule, d.Location()); err != nil {
			msg := strings.TrimPrefix(err.Error(), "timetable: ")
			if inner := errors.Unwrap(err); inner != nil {
				msg = inner.Error()
			}
			return fmt.Errorf("schedule %q: %s", d.schedule, msg)
		}
	}
	if d.Scheduled() && d.start.IsZero() {
		// As in Airflow: without a start date, there is no first interval.
		return fmt.Errorf("schedule %q: a scheduled DAG needs a StartDate", d.ScheduleString())
	}
	return nil
}

func (d *DAG) restriction() timetable.Restriction {
	return timetable.Restriction{Earliest: d.start, Latest: d.end, Catchup: d.catchup}
}

// Scheduled reports whether the DAG has runs created by the scheduler (a cron,
// a preset, @once or Every).
func (d *DAG) Scheduled() bool {
	return d.every > 0 || (d.schedule != "" && d.schedule != "@none")
}

// NextDataInterval is the single source of truth for scheduling, Airflow's
// next_dagrun_info: the data interval of the next scheduled run after the last
// automated run (nil when none), given the start date, end date and catchup. The
// returned interval may end after now; its run is created once End has passed. It
// reports false when no further run exists (end date passed, @once done, no
// schedule). Times are in UTC.
func (d *DAG) NextDataInterval(last *DataInterval, now time.Time) (DataInterval, bool) {
	return d.timetable().Next(last, d.restriction(), now)
}

// InferInterval returns the data interval of a manual run at logical date t
// (Airflow's infer_manual_data_interval).
func (d *DAG) InferInterval(t time.Time) (start, end time.Time) {
	iv := d.timetable().Infer(t)
	return iv.Start, iv.End
}

// BackfillIntervals returns the intervals whose logical date is in [from, to],
// bounded by the start and end dates, in order (airflow dags backfill -s -e).
func (d *DAG) BackfillIntervals(from, to time.Time) ([]DataInterval, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("dag %q: backfill --from %s is after --to %s", d.id, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if !d.Scheduled() {
		return nil, fmt.Errorf("dag %q has no schedule to backfill", d.id)
	}
	if !d.end.IsZero() && from.After(d.end) {
		return nil, fmt.Errorf("dag %q: backfill range starts %s, after the end date %s", d.id, from.Format(time.RFC3339), d.end.Format(time.RFC3339))
	}
	if !d.start.IsZero() && to.Before(d.start) {
		return nil, fmt.Errorf("dag %q: backfill range ends %s, before the start date %s", d.id, to.Format(time.RFC3339), d.start.Format(time.RFC3339))
	}
	ivs, err := timetable.Range(d.timetable(), from, to, d.restriction())
	if err != nil {
		return nil, fmt.Errorf("dag %q: %w", d.id, err)
	}
	return ivs, nil
}

// ScheduleString returns the schedule for display: the cron or preset as given,
// "every 1h0m0s", or "" for manual only.
func (d *DAG) ScheduleString() string {
	if d.every > 0 {
		return "every " + d.every.String()
	}
	if d.schedule == "@none" {
		return ""
	}
	return d.schedule
}
