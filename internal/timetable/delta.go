package timetable

import "time"

// deltaTimetable is Airflow's DeltaDataIntervalTimetable for a timedelta:
// every step is elapsed time, and nothing is aligned.
type deltaTimetable struct{ d time.Duration }

func (t deltaTimetable) Next(last *Interval, r Restriction, now time.Time) (Interval, bool) {
	return nextDataInterval(t, last, r, now)
}

// Infer is [t-d, t].
func (t deltaTimetable) Infer(at time.Time) Interval {
	return Interval{Start: at.Add(-t.d).UTC(), End: at.UTC()}
}

func (deltaTimetable) Periodic() bool   { return true }
func (t deltaTimetable) String() string { return t.d.String() }

func (t deltaTimetable) getNext(c time.Time) (time.Time, bool)   { return c.Add(t.d), true }
func (t deltaTimetable) getPrev(c time.Time) (time.Time, bool)   { return c.Add(-t.d), true }
func (deltaTimetable) alignToNext(c time.Time) (time.Time, bool) { return c, true }
func (deltaTimetable) alignToPrev(c time.Time) (time.Time, bool) { return c, true }

// skipToLatest follows Airflow 2.8-2.10 (apache/airflow#35391): round now
// down to a multiple of d counted from the Unix epoch, step one interval
// back, and never go before the start date. The resulting interval is the
// newest epoch-aligned one that has ended; it is not aligned to the start
// date's grid.
func (t deltaTimetable) skipToLatest(earliest, now time.Time) (time.Time, bool) {
	start := floorSinceEpoch(now, t.d).Add(-t.d)
	if !earliest.IsZero() && earliest.After(start) {
		start = earliest
	}
	return start, true
}

// floorSinceEpoch returns the latest time <= t that is a whole multiple of d
// after the Unix epoch (Python: ts - ts % d). time.Truncate counts from
// year 1 instead, so its result is shifted by the epoch's remainder.
func floorSinceEpoch(t time.Time, d time.Duration) time.Time {
	epoch := time.Unix(0, 0)
	shift := epoch.Sub(epoch.Truncate(d))
	f := t.Truncate(d).Add(shift)
	if f.After(t) {
		f = f.Add(-d)
	}
	return f
}
