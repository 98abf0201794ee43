package timetable

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Interval is a run's data interval [Start, End). The run's logical date is
// Start; an automated run is created once End has passed. @once runs and
// manual runs of unscheduled DAGs have Start == End.
type Interval struct{ Start, End time.Time }

// Restriction is what bounds the scheduler (Airflow's TimeRestriction).
type Restriction struct {
	// Earliest is the DAG's start date; the zero time means none.
	Earliest time.Time
	// Latest is the DAG's end date; the zero time means none. A run whose
	// interval starts exactly at Latest is still scheduled.
	Latest time.Time
	// Catchup selects whether every missed interval is scheduled (true) or
	// only the newest complete one (false).
	Catchup bool
}

// Timetable decides the data intervals of a DAG's runs. All times it returns
// are in UTC, like Airflow's (which converts everything with convert_to_utc).
type Timetable interface {
	// Next is Airflow's next_dagrun_info: the data interval of the next
	// automated run after last (nil when there was none), within r. now is
	// consulted only when r.Catchup is false. The returned interval's End
	// may be after now; the caller creates the run once End has passed.
	// It reports false when no further run exists.
	Next(last *Interval, r Restriction, now time.Time) (Interval, bool)
	// Infer is Airflow's infer_manual_data_interval: the data interval of a
	// manual run triggered at t.
	Infer(t time.Time) Interval
	// Periodic reports whether runs repeat (false for @once and no schedule).
	Periodic() bool
	// String returns the schedule: the cron expression or preset as given to
	// Parse, "@once", "@none", or the duration given to Every.
	String() string
}

// presets maps Airflow's cron_presets (airflow/utils/dates.py) plus the two
// aliases croniter itself understands to their cron expressions.
var presets = map[string]string{
	"@hourly":    "0 * * * *",
	"@daily":     "0 0 * * *",
	"@midnight":  "0 0 * * *",
	"@weekly":    "0 0 * * 0",
	"@monthly":   "0 0 1 * *",
	"@quarterly": "0 0 1 */3 *",
	"@yearly":    "0 0 1 1 *",
	"@annually":  "0 0 1 1 *",
}

// Parse returns the timetable for a DAG schedule string, read on the wall
// clock of loc (nil means UTC, Airflow's default timezone).
//
// Accepted are "" and "@none" (no schedule: manual runs only), "@once", the
// presets @hourly, @daily (= @midnight), @weekly, @monthly, @quarterly and
// @yearly (= @annually), and 5-field cron expressions (minute hour
// day-of-month month day-of-week) in the syntax of robfig/cron's standard
// parser: numbers, names (jan, mon), ranges, steps, lists, and * or ? (the
// latter only in the day fields). As in croniter, 7 is accepted for Sunday.
// Presets and names are case-insensitive. An expression that never matches
// (such as 0 0 30 2 *) is an error, as is anything else; the error names the
// expression.
func Parse(expr string, loc *time.Location) (Timetable, error) {
	if loc == nil {
		loc = time.UTC
	}
	e := strings.TrimSpace(expr)
	lower := strings.ToLower(e)
	switch lower {
	case "", "@none":
		return noneTimetable{}, nil
	case "@once":
		return onceTimetable{}, nil
	}
	cronExpr := e
	if strings.HasPrefix(lower, "@") {
		p, ok := presets[lower]
		if !ok {
			return nil, fmt.Errorf("timetable: unsupported schedule %q", expr)
		}
		cronExpr = p
	}
	spec, err := parseCron(cronExpr)
	if err != nil {
		return nil, fmt.Errorf("timetable: invalid cron expression %q: %w", expr, err)
	}
	return &cronTimetable{expr: e, loc: loc, spec: spec}, nil
}

// Every returns Airflow's timedelta schedule (DeltaDataIntervalTimetable):
// back-to-back intervals of d measured in elapsed time from the start date.
// d must be positive.
func Every(d time.Duration) (Timetable, error) {
	if d <= 0 {
		return nil, fmt.Errorf("timetable: schedule interval must be positive, not %v", d)
	}
	return deltaTimetable{d: d}, nil
}

// MaxRangeIntervals bounds the number of intervals Range returns.
const MaxRangeIntervals = 1_000_000

// Range returns, in order, the intervals a backfill from..to covers: those
// whose logical date (Start) is in [from, to], further bounded by r.Earliest
// and r.Latest when set, like `airflow dags backfill -s from -e to` (Airflow's
// DAG.iter_dagrun_infos_between with align=True, which always catches up;
// r.Catchup is ignored). For @once the single interval starts at the later
// of from and r.Earliest; with no schedule the result is empty. It is an
// error if to is before from, or if more than MaxRangeIntervals would be
// returned.
func Range(t Timetable, from, to time.Time, r Restriction) ([]Interval, error) {
	if t == nil {
		return nil, errors.New("timetable: Range of a nil Timetable")
	}
	if to.Before(from) {
		return nil, fmt.Errorf("timetable: backfill end %v is before its start %v", to, from)
	}
	rr := Restriction{Earliest: from, Latest: to, Catchup: true}
	if !r.Earliest.IsZero() && r.Earliest.After(from) {
		rr.Earliest = r.Earliest
	}
	if !r.Latest.IsZero() && r.Latest.Before(to) {
		rr.Latest = r.Latest
	}
	if rr.Latest.Before(rr.Earliest) {
		return nil, nil
	}
	var out []Interval
	var last Interval // one variable: taking its address allocates once
	iv, ok := t.Next(nil, rr, to)
	for ok {
		if len(out) == MaxRangeIntervals {
			return nil, fmt.Errorf("timetable: backfill %v..%v of %s has more than %d intervals", from, to, t, MaxRangeIntervals)
		}
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].Start) {
			return nil, fmt.Errorf("timetable: %s did not advance after %v", t, out[n-1].Start)
		}
		out = append(out, iv)
		last = iv
		iv, ok = t.Next(&last, rr, to)
	}
	return out, nil
}

// schedule is the part of Airflow's _DataIntervalTimetable that cron and
// delta timetables implement differently. The ok results are false only when
// a cron search runs out of representable years.
type schedule interface {
	getNext(t time.Time) (time.Time, bool)
	getPrev(t time.Time) (time.Time, bool)
	alignToNext(t time.Time) (time.Time, bool)
	alignToPrev(t time.Time) (time.Time, bool)
	// skipToLatest bounds the first run when catchup is off; earliest is the
	// zero time when there is no start date.
	skipToLatest(earliest, now time.Time) (time.Time, bool)
}

// nextDataInterval is _DataIntervalTimetable.next_dagrun_info
// (airflow/timetables/interval.py).
func nextDataInterval(s schedule, last *Interval, r Restriction, now time.Time) (Interval, bool) {
	earliest := r.Earliest
	ok := true
	if !r.Catchup {
		earliest, ok = s.skipToLatest(earliest, now)
	} else if !earliest.IsZero() {
		earliest, ok = s.alignToNext(earliest)
	}
	if !ok {
		return Interval{}, false
	}
	var start time.Time
	if last == nil {
		// First run: the first time matching the schedule, with a data
		// interval created retrospectively.
		if earliest.IsZero() {
			return Interval{}, false
		}
		start = earliest
	} else {
		// Aligning (backwards!) is what copes with a changed schedule.
		start, ok = s.alignToPrev(last.End)
		if !ok {
			return Interval{}, false
		}
		if !earliest.IsZero() && earliest.After(start) {
			start = earliest
		}
	}
	if !r.Latest.IsZero() && start.After(r.Latest) {
		return Interval{}, false
	}
	end, ok := s.getNext(start)
	if !ok {
		return Interval{}, false
	}
	return Interval{Start: start.UTC(), End: end.UTC()}, true
}

// noneTimetable is Airflow's NullTimetable (schedule=None).
type noneTimetable struct{}

func (noneTimetable) Next(*Interval, Restriction, time.Time) (Interval, bool) {
	return Interval{}, false
}
func (noneTimetable) Infer(t time.Time) Interval { return Interval{t.UTC(), t.UTC()} }
func (noneTimetable) Periodic() bool             { return false }
func (noneTimetable) String() string             { return "@none" }

// onceTimetable is Airflow's OnceTimetable (schedule="@once").
type onceTimetable struct{}

// Next schedules a single run at the start date, regardless of catchup,
// unless the start date is missing or after the end date.
func (onceTimetable) Next(last *Interval, r Restriction, _ time.Time) (Interval, bool) {
	if last != nil || r.Earliest.IsZero() {
		return Interval{}, false
	}
	if !r.Latest.IsZero() && r.Earliest.After(r.Latest) {
		return Interval{}, false
	}
	t := r.Earliest.UTC()
	return Interval{t, t}, true
}
func (onceTimetable) Infer(t time.Time) Interval { return Interval{t.UTC(), t.UTC()} }
func (onceTimetable) Periodic() bool             { return false }
func (onceTimetable) String() string             { return "@once" }
