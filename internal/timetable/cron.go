package timetable

import (
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronTimetable is Airflow's CronDataIntervalTimetable (schedule="<cron>").
type cronTimetable struct {
	expr string
	loc  *time.Location
	spec cronSpec
}

func (c *cronTimetable) Next(last *Interval, r Restriction, now time.Time) (Interval, bool) {
	return nextDataInterval(c, last, r, now)
}

// Infer returns the last complete period before t: for a midnight schedule
// and t = 01:00 on the 25th, [00:00 24th, 00:00 25th). If t is on the
// schedule, the period ending at t.
func (c *cronTimetable) Infer(t time.Time) Interval {
	end, ok := c.alignToPrev(t)
	if !ok {
		return Interval{t.UTC(), t.UTC()}
	}
	start, ok := c.getPrev(end)
	if !ok {
		return Interval{end.UTC(), end.UTC()}
	}
	return Interval{Start: start.UTC(), End: end.UTC()}
}

func (c *cronTimetable) Periodic() bool { return true }
func (c *cronTimetable) String() string { return c.expr }

// naive is Airflow's make_naive: t's wall clock in c.loc, as a UTC time.
func (c *cronTimetable) naive(t time.Time) time.Time {
	_, off := t.In(c.loc).Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// getNext is CronMixin._get_next (airflow/timetables/_cron.py): croniter
// finds the next matching wall time after t's wall time. For crons with
// fixed hours that wall time is localised like make_aware (fold=1: a
// repeated wall time means its later occurrence, a skipped one moves forward
// by the gap). Crons covering every hour instead add the wall-clock distance
// to t as elapsed time, so the repeated hour is scheduled twice.
func (c *cronTimetable) getNext(t time.Time) (time.Time, bool) {
	n := c.naive(t)
	s, ok := c.spec.next(n)
	if !ok {
		return time.Time{}, false
	}
	if c.spec.everyHour {
		return t.Add(s.Sub(n)).UTC(), true
	}
	return wallToInstant(s, c.loc), true
}

// getPrev is CronMixin._get_prev, the mirror image of getNext.
func (c *cronTimetable) getPrev(t time.Time) (time.Time, bool) {
	n := c.naive(t)
	s, ok := c.spec.prev(n)
	if !ok {
		return time.Time{}, false
	}
	if c.spec.everyHour {
		return t.Add(-n.Sub(s)).UTC(), true
	}
	return wallToInstant(s, c.loc), true
}

// alignToNext is CronMixin._align_to_next: t if it is on the schedule, else
// the next scheduled time.
func (c *cronTimetable) alignToNext(t time.Time) (time.Time, bool) {
	next, ok := c.getNext(t)
	if !ok {
		return time.Time{}, false
	}
	if prev, ok := c.getPrev(next); ok && prev.Equal(t) {
		return t.UTC(), true
	}
	return next, true
}

// alignToPrev is CronMixin._align_to_prev: t if it is on the schedule, else
// the previous scheduled time.
func (c *cronTimetable) alignToPrev(t time.Time) (time.Time, bool) {
	prev, ok := c.getPrev(t)
	if !ok {
		return time.Time{}, false
	}
	if next, ok := c.getNext(prev); ok && next.Equal(t) {
		return t.UTC(), true
	}
	return prev, true
}

// skipToLatest is CronDataIntervalTimetable._skip_to_latest with Airflow
// 2.x's default behaviour: the start of the newest interval that has ended
// at or before now, but never before the start date aligned to the schedule.
// Airflow raises an AssertionError if the schedule after getPrev(now) is
// still before now (conceivable only around DST folds); this steps forward
// instead.
func (c *cronTimetable) skipToLatest(earliest, now time.Time) (time.Time, bool) {
	lastStart, ok := c.getPrev(now)
	if !ok {
		return time.Time{}, false
	}
	nextStart, ok := c.getNext(lastStart)
	for i := 0; ok && nextStart.Before(now) && i < 1000; i++ {
		lastStart = nextStart
		nextStart, ok = c.getNext(lastStart)
	}
	if !ok {
		return time.Time{}, false
	}
	newStart := lastStart // now is on an interval boundary
	if !nextStart.Equal(now) {
		// now is inside [lastStart, nextStart), which has not ended yet.
		if newStart, ok = c.getPrev(lastStart); !ok {
			return time.Time{}, false
		}
	}
	if earliest.IsZero() {
		return newStart, true
	}
	aligned, ok := c.alignToNext(earliest)
	if !ok {
		return time.Time{}, false
	}
	if aligned.After(newStart) {
		return aligned, true
	}
	return newStart, true
}

// cronSpec is a parsed 5-field cron expression, matched against naive
// (wall-clock) times represented as UTC times, like croniter on naive
// datetimes.
type cronSpec struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	// dayOr is croniter's day_or rule: when neither day field counts as
	// "*", a day matches if either field matches; otherwise both must.
	dayOr bool
	// everyHour is Airflow's _covers_every_hour: croniter normalised the
	// hour field to "*".
	everyHour bool
}

// searchYears bounds a search for the next or previous match. A valid
// expression matches at least every 8 years (Feb 29 across 2100).
const searchYears = 30

const starBit = 1 << 63 // robfig/cron's marker for "*" and "?"

var standardParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// parseCron parses a 5-field cron expression with robfig/cron and works out
// the day and hour rules croniter applies to it.
func parseCron(expr string) (cronSpec, error) {
	if strings.Contains(expr, "=") {
		return cronSpec{}, errors.New("time zone prefixes are not supported; pass a location")
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return cronSpec{}, fmt.Errorf("expected exactly 5 fields, found %d", len(fields))
	}
	for i, f := range fields {
		for _, e := range strings.Split(f, ",") {
			if e == "" {
				return cronSpec{}, fmt.Errorf("empty list element in field %q", f)
			}
		}
		if strings.Contains(f, "?") && (f != "?" || (i != 2 && i != 4)) {
			return cronSpec{}, fmt.Errorf("%q: ? may only stand alone in the day fields", f)
		}
	}
	dow, err := normalizeDow(fields[4])
	if err != nil {
		return cronSpec{}, err
	}
	sched, err := standardParser.Parse(strings.Join([]string{fields[0], fields[1], fields[2], fields[3], dow}, " "))
	if err != nil {
		return cronSpec{}, err
	}
	ss, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return cronSpec{}, fmt.Errorf("unexpected schedule type %T", sched)
	}
	const (
		allHours = 1<<24 - 1
		allDom   = (1<<32 - 1) &^ 1
		allDow   = 1<<7 - 1
	)
	s := cronSpec{
		minute: ss.Minute &^ starBit,
		hour:   ss.Hour &^ starBit,
		dom:    ss.Dom &^ starBit,
		month:  ss.Month &^ starBit,
		dow:    ss.Dow &^ starBit,
	}
	// croniter turns a field into "*" when it has a literal * (or ?), or when
	// its values cover the whole range -- except that a full day field stays a
	// list when the other day field has no * in its text.
	domStar := hasStar(fields[2]) || (s.dom == allDom && strings.Contains(fields[4], "*"))
	dowStar := hasStar(fields[4]) || (s.dow == allDow && strings.Contains(fields[2], "*"))
	s.dayOr = !domStar && !dowStar
	s.everyHour = onlyStars(fields[1]) || (!hasStar(fields[1]) && s.hour == allHours)

	if _, ok := s.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); !ok {
		return cronSpec{}, errors.New("the expression never matches")
	}
	return s, nil
}

// hasStar reports whether a cron field has a literal * or ? list element.
func hasStar(field string) bool {
	for _, e := range strings.Split(field, ",") {
		if e == "*" || e == "?" {
			return true
		}
	}
	return false
}

// onlyStars reports whether every list element of a cron field is *.
func onlyStars(field string) bool {
	for _, e := range strings.Split(field, ",") {
		if e != "*" {
			return false
		}
	}
	return true
}

var dowToSeven = regexp.MustCompile(`^([0-6]|[a-zA-Z]{3})-7(?:/([0-9]+))?$`)

// normalizeDow rewrites croniter's Sunday-as-7 forms ("7", "5-7", "1-7/2"),
// which robfig/cron rejects, into 0-6 values.
func normalizeDow(field string) (string, error) {
	elems := strings.Split(field, ",")
	for i, e := range elems {
		if e == "7" {
			elems[i] = "0"
			continue
		}
		m := dowToSeven.FindStringSubmatch(e)
		if m == nil {
			continue
		}
		low, ok := map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}[strings.ToLower(m[1])]
		if !ok {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				return "", fmt.Errorf("bad day of week %q", m[1])
			}
			low = n
		}
		step := 1
		if m[2] != "" {
			n, err := strconv.Atoi(m[2])
			if err != nil || n <= 0 {
				return "", fmt.Errorf("bad step in %q", e)
			}
			step = n
		}
		var vals []string
		for v := low; v <= 7; v += step {
			vals = append(vals, strconv.Itoa(v%7))
		}
		elems[i] = strings.Join(vals, ",")
	}
	return strings.Join(elems, ","), nil
}

func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

func (s *cronSpec) dayMatches(y int, m time.Month, d int) bool {
	domOK := s.dom&(1<<uint(d)) != 0
	dowOK := s.dow&(1<<uint(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday())) != 0
	if s.dayOr {
		return domOK || dowOK
	}
	return domOK && dowOK
}

// nextBit returns the lowest set bit of mask at or above from, or -1.
func nextBit(mask uint64, from int) int {
	m := mask & (^uint64(0) << uint(from))
	if m == 0 {
		return -1
	}
	return bits.TrailingZeros64(m)
}

// prevBit returns the highest set bit of mask at or below from, or -1.
func prevBit(mask uint64, from int) int {
	if from < 0 {
		return -1
	}
	m := mask & (uint64(2)<<uint(from) - 1)
	if m == 0 {
		return -1
	}
	return 63 - bits.LeadingZeros64(m)
}

// next returns the first matching minute strictly after the naive time n
// (croniter's get_next on a naive datetime).
func (s *cronSpec) next(n time.Time) (time.Time, bool) {
	t := n.Truncate(time.Minute).Add(time.Minute)
	y, mo, d := t.Date()
	h, mi := t.Hour(), t.Minute()
	for limit := y + searchYears; y <= limit; {
		if s.month&(1<<uint(mo)) == 0 || d > daysIn(y, mo) {
			if mo++; mo > time.December {
				mo, y = time.January, y+1
			}
			d, h, mi = 1, 0, 0
			continue
		}
		if !s.dayMatches(y, mo, d) {
			d, h, mi = d+1, 0, 0
			continue
		}
		nh := nextBit(s.hour, h)
		if nh < 0 {
			d, h, mi = d+1, 0, 0
			continue
		}
		if nh != h {
			h, mi = nh, 0
		}
		nm := nextBit(s.minute, mi)
		if nm < 0 {
			if h, mi = h+1, 0; h > 23 {
				d, h = d+1, 0
			}
			continue
		}
		return time.Date(y, mo, d, h, nm, 0, 0, time.UTC), true
	}
	return time.Time{}, false
}

// prev returns the last matching minute strictly before the naive time n
// (croniter's get_prev on a naive datetime).
func (s *cronSpec) prev(n time.Time) (time.Time, bool) {
	t := n.Truncate(time.Minute)
	if t.Equal(n) {
		t = t.Add(-time.Minute)
	}
	y, mo, d := t.Date()
	h, mi := t.Hour(), t.Minute()
	for limit := y - searchYears; y >= limit; {
		if s.month&(1<<uint(mo)) == 0 || d < 1 {
			if mo--; mo < time.January {
				mo, y = time.December, y-1
			}
			d, h, mi = daysIn(y, mo), 23, 59
			continue
		}
		if !s.dayMatches(y, mo, d) {
			d, h, mi = d-1, 23, 59
			continue
		}
		ph := prevBit(s.hour, h)
		if ph < 0 {
			d, h, mi = d-1, 23, 59
			continue
		}
		if ph != h {
			h, mi = ph, 59
		}
		pm := prevBit(s.minute, mi)
		if pm < 0 {
			if h, mi = h-1, 59; h < 0 {
				d, h = d-1, 23
			}
			continue
		}
		return time.Date(y, mo, d, h, pm, 0, 0, time.UTC), true
	}
	return time.Time{}, false
}
