package timetable

import "time"

// offsetAt returns loc's UTC offset at instant t.
func offsetAt(t time.Time, loc *time.Location) time.Duration {
	_, off := t.In(loc).Zone()
	return time.Duration(off) * time.Second
}

// wallToInstant is Airflow's make_aware(value.replace(fold=1)) with a
// pendulum timezone (airflow/utils/timezone.py): it returns, in UTC, the
// instant at which loc's wall clock reads w (whose fields are the wall time;
// w is in UTC). A wall time that occurs twice (clocks going back) resolves
// to its later occurrence; a wall time that does not exist (clocks going
// forward) is moved forward by the length of the gap, which is the same
// instant as reading it with the offset in force before the transition.
//
// The instants showing w lie within 14 hours of w read as UTC, so the
// offsets 24 hours either side are the ones before and after any transition
// that matters. Zones with two transitions within 48 hours (none in current
// tzdata) are not handled exactly. time.Time.ZoneBounds is deliberately not
// used: for years past the zone's table it misreports some period ends.
func wallToInstant(w time.Time, loc *time.Location) time.Time {
	if loc == time.UTC {
		return w
	}
	before := offsetAt(w.Add(-24*time.Hour), loc)
	after := offsetAt(w.Add(24*time.Hour), loc)
	u1 := w.Add(-before) // w read with the earlier offset
	if before == after {
		return u1
	}
	u2 := w.Add(-after) // w read with the later offset
	ok1 := offsetAt(u1, loc) == before
	ok2 := offsetAt(u2, loc) == after
	switch {
	case ok1 && ok2: // repeated wall time: the later instant
		if u2.After(u1) {
			return u2
		}
		return u1
	case ok2:
		return u2
	case ok1:
		return u1
	}
	// Skipped wall time: shift it forward by the gap, i.e. read it with the
	// offset in force before the transition.
	return u1
}
