package timetable

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func iv(start, end string) Interval { return Interval{ts(start), ts(end)} }

// ivs builds intervals from start, end pairs.
func ivs(pairs ...string) []Interval {
	out := make([]Interval, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, iv(pairs[i], pairs[i+1]))
	}
	return out
}

func mustParse(t testing.TB, expr, zone string) Timetable {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := Parse(expr, loc)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func mustEvery(t testing.TB, d time.Duration) Timetable {
	t.Helper()
	tt, err := Every(d)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// catchupRuns returns the first n intervals the scheduler creates under r.
func catchupRuns(t *testing.T, tt Timetable, r Restriction, n int) []Interval {
	t.Helper()
	var out []Interval
	var last *Interval
	for len(out) < n {
		got, ok := tt.Next(last, r, time.Time{})
		if !ok {
			t.Fatalf("no run after %v", last)
		}
		out = append(out, got)
		last = &got
	}
	return out
}

func fmtIv(i Interval) string {
	return "[" + i.Start.Format(time.RFC3339) + ", " + i.End.Format(time.RFC3339) + ")"
}

func checkIntervals(t *testing.T, got, want []Interval) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d intervals, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) {
			t.Errorf("interval %d = %s, want %s", i, fmtIv(g), fmtIv(w))
		}
		if g.Start.Location() != time.UTC || g.End.Location() != time.UTC {
			t.Errorf("interval %d %s is not in UTC", i, fmtIv(g))
		}
	}
}

func checkNext(t *testing.T, got Interval, ok bool, want Interval) {
	t.Helper()
	if !ok {
		t.Fatalf("Next = none, want %s", fmtIv(want))
	}
	checkIntervals(t, []Interval{got}, []Interval{want})
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{
		"61 * * * *",
		"garbage",
		"* * * *",
		"* * * * * *",
		"0 0 1 13 0", // Airflow's own invalid example
		"0 24 * * *",
		"0 0 0 * *",
		"-1 * * * *",
		"1,,2 * * * *",
		"0 ? * * *",
		"0 0 ?,1 * *",
		"0 0 30 2 *", // valid syntax, never matches
		"0 0 31 4,6 *",
		"@every 1h",
		"@continuous",
		"@fortnightly",
		"TZ=UTC 0 * * * *",
		"CRON_TZ=Europe/Paris 0 0 * * *",
		"TZ=x",
		"0 0 * * 8",
		"0 0 * * 7-7",
		"*/0 * * * *",
	} {
		_, err := Parse(expr, time.UTC)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error", expr)
			continue
		}
		if !strings.Contains(err.Error(), expr) {
			t.Errorf("Parse(%q) error %q does not name the expression", expr, err)
		}
	}
}

func TestParseKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr     string
		periodic bool
		str      string
	}{
		{"", false, "@none"},
		{"@none", false, "@none"},
		{"  @once ", false, "@once"},
		{"@ONCE", false, "@once"},
		{"@daily", true, "@daily"},
		{"@Hourly", true, "@Hourly"},
		{" 30 2 * * * ", true, "30 2 * * *"},
		{"0 0 * * MON-fri", true, "0 0 * * MON-fri"},
		{"0 0 * jan,Jul sun", true, "0 0 * jan,Jul sun"},
	}
	for _, tc := range tests {
		tt, err := Parse(tc.expr, nil)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.expr, err)
			continue
		}
		if tt.Periodic() != tc.periodic || tt.String() != tc.str {
			t.Errorf("Parse(%q): Periodic %v String %q, want %v %q", tc.expr, tt.Periodic(), tt.String(), tc.periodic, tc.str)
		}
	}
}

// TestPresets checks the first run of every preset after the unaligned start
// date Wed 2024-01-10 10:17 UTC (the start is aligned forward).
func TestPresets(t *testing.T) {
	t.Parallel()
	start := ts("2024-01-10T10:17:00Z")
	tests := []struct {
		expr string
		want []Interval
	}{
		{"@hourly", ivs("2024-01-10T11:00:00Z", "2024-01-10T12:00:00Z", "2024-01-10T12:00:00Z", "2024-01-10T13:00:00Z")},
		{"@daily", ivs("2024-01-11T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z")},
		{"@midnight", ivs("2024-01-11T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z")},
		{"@weekly", ivs("2024-01-14T00:00:00Z", "2024-01-21T00:00:00Z", "2024-01-21T00:00:00Z", "2024-01-28T00:00:00Z")},
		{"0 0 * * 7", ivs("2024-01-14T00:00:00Z", "2024-01-21T00:00:00Z", "2024-01-21T00:00:00Z", "2024-01-28T00:00:00Z")},
		{"@monthly", ivs("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")},
		{"@quarterly", ivs("2024-04-01T00:00:00Z", "2024-07-01T00:00:00Z", "2024-07-01T00:00:00Z", "2024-10-01T00:00:00Z")},
		{"@yearly", ivs("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")},
		{"@annually", ivs("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")},
		{"0 0 29 2 *", ivs("2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z")},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			t.Parallel()
			tt := mustParse(t, tc.expr, "UTC")
			checkIntervals(t, catchupRuns(t, tt, Restriction{Earliest: start, Catchup: true}, len(tc.want)), tc.want)
		})
	}
}

// TestDayFields checks croniter's day_or rule: when both day fields are
// restricted (neither counts as "*"), a day matches if either does.
func TestDayFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr   string
		starts []string
	}{
		// The 13th or any Friday. Sept 2024: Fridays 6, 13, 20, 27; Oct 4, 11, 18; Sunday Oct 13.
		{"0 0 13 * 5", []string{"2024-09-06", "2024-09-13", "2024-09-20", "2024-09-27", "2024-10-04", "2024-10-11", "2024-10-13", "2024-10-18"}},
		// Day of month "*": Mondays only.
		{"0 0 * * 1", []string{"2024-09-02", "2024-09-09", "2024-09-16"}},
		{"0 0 ? * mon", []string{"2024-09-02", "2024-09-09", "2024-09-16"}},
		// croniter keeps a full day-of-month list as a list when the day of
		// week has no "*", so the union is every day.
		{"0 0 */1 * 1", []string{"2024-09-01", "2024-09-02", "2024-09-03"}},
		{"0 0 1-31 * 1", []string{"2024-09-01", "2024-09-02", "2024-09-03"}},
		// Sunday as 7, inside a range.
		{"0 0 * * 5-7", []string{"2024-09-01", "2024-09-06", "2024-09-07", "2024-09-08", "2024-09-13"}},
		{"0 0 * * 1-7/3", []string{"2024-09-01", "2024-09-02", "2024-09-05", "2024-09-08", "2024-09-09"}},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			t.Parallel()
			tt := mustParse(t, tc.expr, "UTC")
			got := catchupRuns(t, tt, Restriction{Earliest: ts("2024-09-01T00:00:00Z"), Catchup: true}, len(tc.starts))
			for i, s := range tc.starts {
				if want := ts(s + "T00:00:00Z"); !got[i].Start.Equal(want) {
					t.Errorf("run %d starts %s, want %s", i, got[i].Start.Format(time.RFC3339), want.Format(time.RFC3339))
				}
			}
		})
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	daily := mustParse(t, "@daily", "UTC")
	at1630 := mustParse(t, "30 16 * * *", "UTC")
	hourly := mustParse(t, "@hourly", "UTC")
	everyHour := mustEvery(t, time.Hour)
	day := mustEvery(t, 24*time.Hour)
	week := mustEvery(t, 7*24*time.Hour)
	once := mustParse(t, "@once", "UTC")
	none := mustParse(t, "", "UTC")

	// Fixtures of Airflow's tests/timetables/test_interval_timetable.py.
	afStart := ts("2021-09-04T00:00:00Z")
	afNow := ts("2021-09-07T00:00:00Z")
	afPrev := iv("2021-09-04T00:00:00Z", "2021-09-05T00:00:00Z")
	afOld := iv("2021-09-06T00:00:00Z", "2021-09-07T00:00:00Z")

	tests := []struct {
		name string
		tt   Timetable
		last *Interval
		r    Restriction
		now  string
		want *Interval // nil: no run
	}{
		{name: "aligned start", tt: daily,
			r:    Restriction{Earliest: ts("2024-01-01T00:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")}},
		{name: "unaligned start aligns forward", tt: daily,
			r:    Restriction{Earliest: ts("2024-01-01T10:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-02T00:00:00Z"), ts("2024-01-03T00:00:00Z")}},
		{name: "catchup continues after last", tt: daily, last: &Interval{ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")},
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z"), Catchup: true}, now: "2024-06-01T00:00:00Z",
			want: &Interval{ts("2024-01-02T00:00:00Z"), ts("2024-01-03T00:00:00Z")}},
		{name: "no catchup: newest ended interval", tt: daily,
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z")}, now: "2024-03-15T10:00:00Z",
			want: &Interval{ts("2024-03-14T00:00:00Z"), ts("2024-03-15T00:00:00Z")}},
		{name: "no catchup: now on a boundary", tt: daily,
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z")}, now: "2024-03-15T00:00:00Z",
			want: &Interval{ts("2024-03-14T00:00:00Z"), ts("2024-03-15T00:00:00Z")}},
		{name: "no catchup skips missed runs after last", tt: daily, last: &Interval{ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")},
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z")}, now: "2024-03-15T10:00:00Z",
			want: &Interval{ts("2024-03-14T00:00:00Z"), ts("2024-03-15T00:00:00Z")}},
		{name: "no catchup after the newest run waits", tt: daily, last: &Interval{ts("2024-03-14T00:00:00Z"), ts("2024-03-15T00:00:00Z")},
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z")}, now: "2024-03-15T10:00:00Z",
			want: &Interval{ts("2024-03-15T00:00:00Z"), ts("2024-03-16T00:00:00Z")}},
		{name: "no catchup never before the aligned start date", tt: daily,
			r: Restriction{Earliest: ts("2024-06-01T10:00:00Z")}, now: "2024-03-15T10:00:00Z",
			want: &Interval{ts("2024-06-02T00:00:00Z"), ts("2024-06-03T00:00:00Z")}},
		{name: "no start date, no last", tt: daily, r: Restriction{Catchup: true}},
		{name: "no start date, after last", tt: daily, last: &Interval{ts("2022-08-07T01:00:00Z"), ts("2022-08-08T01:00:00Z")},
			r:    Restriction{Catchup: true},
			want: &Interval{ts("2022-08-08T00:00:00Z"), ts("2022-08-09T00:00:00Z")}}, // Airflow: test_cron_next_dagrun_info_alignment "changed"
		{name: "interval starting at the end date runs", tt: daily, last: &Interval{ts("2024-01-04T00:00:00Z"), ts("2024-01-05T00:00:00Z")},
			r:    Restriction{Earliest: ts("2024-01-01T00:00:00Z"), Latest: ts("2024-01-05T00:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-05T00:00:00Z"), ts("2024-01-06T00:00:00Z")}},
		{name: "end date stops scheduling", tt: daily, last: &Interval{ts("2024-01-05T00:00:00Z"), ts("2024-01-06T00:00:00Z")},
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z"), Latest: ts("2024-01-05T00:00:00Z"), Catchup: true}},
		{name: "end date before aligned start", tt: daily,
			r: Restriction{Earliest: ts("2024-01-04T10:00:00Z"), Latest: ts("2024-01-04T23:00:00Z"), Catchup: true}},
		{name: "end date before the no-catchup start", tt: daily,
			r: Restriction{Earliest: ts("2024-01-01T00:00:00Z"), Latest: ts("2024-02-01T00:00:00Z")}, now: "2024-03-15T10:00:00Z"},

		// A last interval left by another schedule is aligned *back* onto
		// this one (_align_to_prev(last.end)); Airflow's
		// test_new_schedule_interval_next_info_starts_at_new_time.
		{name: "changed schedule, catchup, start date", tt: at1630, last: &afOld,
			r: Restriction{Earliest: afStart, Catchup: true}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T16:30:00Z"), ts("2021-09-07T16:30:00Z")}},
		{name: "changed schedule, catchup, no start date", tt: at1630, last: &afOld,
			r: Restriction{Catchup: true}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T16:30:00Z"), ts("2021-09-07T16:30:00Z")}},
		{name: "changed schedule, no catchup", tt: at1630, last: &afOld,
			r: Restriction{Earliest: afStart}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T16:30:00Z"), ts("2021-09-07T16:30:00Z")}},
		{name: "changed schedule, hourly to daily", tt: daily, last: &Interval{ts("2024-01-01T05:00:00Z"), ts("2024-01-01T06:00:00Z")},
			r:    Restriction{Earliest: ts("2023-01-01T00:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")}},
		{name: "changed schedule, daily to every 6h", tt: mustEvery(t, 6*time.Hour), last: &Interval{ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")},
			r:    Restriction{Earliest: ts("2023-01-01T00:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-02T00:00:00Z"), ts("2024-01-02T06:00:00Z")}},

		// Airflow's test_no_catchup_first_starts_at_current_time: the aligned
		// start date wins over the newest ended interval, and the run waits.
		{name: "no catchup, first run, start yesterday", tt: at1630,
			r: Restriction{Earliest: ts("2021-09-06T00:00:00Z")}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T16:30:00Z"), ts("2021-09-07T16:30:00Z")}},
		{name: "no catchup, subsequent, start yesterday", tt: at1630, last: &afPrev,
			r: Restriction{Earliest: ts("2021-09-06T00:00:00Z")}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T16:30:00Z"), ts("2021-09-07T16:30:00Z")}},
		// Airflow's test_no_catchup_next_info_starts_at_current_time.
		{name: "no catchup hourly cron", tt: hourly, last: &afPrev,
			r: Restriction{Earliest: afStart}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T23:00:00Z"), afNow}},
		{name: "no catchup hourly delta", tt: everyHour, last: &afPrev,
			r: Restriction{Earliest: afStart}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T23:00:00Z"), afNow}},
		{name: "no catchup hourly delta first run", tt: everyHour,
			r: Restriction{Earliest: afStart}, now: afNow.Format(time.RFC3339),
			want: &Interval{ts("2021-09-06T23:00:00Z"), afNow}},
		// Airflow's test_catchup_next_info_starts_at_previous_interval_end.
		{name: "catchup hourly cron", tt: hourly, last: &afPrev, r: Restriction{Earliest: afStart, Catchup: true},
			want: &Interval{ts("2021-09-05T00:00:00Z"), ts("2021-09-05T01:00:00Z")}},
		{name: "catchup hourly delta", tt: everyHour, last: &afPrev, r: Restriction{Earliest: afStart, Catchup: true},
			want: &Interval{ts("2021-09-05T00:00:00Z"), ts("2021-09-05T01:00:00Z")}},

		// Delta schedules: elapsed steps from the (unaligned) start date.
		{name: "delta first run", tt: day, r: Restriction{Earliest: ts("2024-01-01T10:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-01T10:00:00Z"), ts("2024-01-02T10:00:00Z")}},
		{name: "delta subsequent", tt: day, last: &Interval{ts("2024-01-01T10:00:00Z"), ts("2024-01-02T10:00:00Z")},
			r:    Restriction{Earliest: ts("2024-01-01T10:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-02T10:00:00Z"), ts("2024-01-03T10:00:00Z")}},
		// _skip_to_latest rounds now down to a multiple of the delta since
		// the Unix epoch (UTC midnight here), then steps back one delta.
		{name: "delta no catchup", tt: day, r: Restriction{Earliest: ts("2024-01-01T10:00:00Z")}, now: "2024-03-15T13:37:00Z",
			want: &Interval{ts("2024-03-14T00:00:00Z"), ts("2024-03-15T00:00:00Z")}},
		// Weeks since the epoch start on Thursdays (1970-01-01 was one).
		{name: "delta week no catchup", tt: week, r: Restriction{Earliest: ts("2024-01-01T00:00:00Z")}, now: "2024-03-15T13:37:00Z",
			want: &Interval{ts("2024-03-07T00:00:00Z"), ts("2024-03-14T00:00:00Z")}},
		{name: "delta no catchup, later start date", tt: day, r: Restriction{Earliest: ts("2024-03-14T12:00:00Z")}, now: "2024-03-15T13:37:00Z",
			want: &Interval{ts("2024-03-14T12:00:00Z"), ts("2024-03-15T12:00:00Z")}},
		{name: "delta end date", tt: day, last: &Interval{ts("2024-01-01T10:00:00Z"), ts("2024-01-02T10:00:00Z")},
			r: Restriction{Earliest: ts("2024-01-01T10:00:00Z"), Latest: ts("2024-01-02T09:59:00Z"), Catchup: true}},

		// @once: [start, start], regardless of catchup; nothing after.
		{name: "once", tt: once, r: Restriction{Earliest: ts("2024-01-01T10:00:00Z")}, now: "2024-05-01T00:00:00Z",
			want: &Interval{ts("2024-01-01T10:00:00Z"), ts("2024-01-01T10:00:00Z")}},
		{name: "once at the end date", tt: once, r: Restriction{Earliest: ts("2024-01-01T10:00:00Z"), Latest: ts("2024-01-01T10:00:00Z"), Catchup: true},
			want: &Interval{ts("2024-01-01T10:00:00Z"), ts("2024-01-01T10:00:00Z")}},
		{name: "once after its run", tt: once, last: &Interval{ts("2024-01-01T10:00:00Z"), ts("2024-01-01T10:00:00Z")},
			r: Restriction{Earliest: ts("2024-01-01T10:00:00Z"), Catchup: true}},
		{name: "once without start date", tt: once, r: Restriction{Catchup: true}},
		{name: "once after end date", tt: once, r: Restriction{Earliest: ts("2024-01-02T00:00:00Z"), Latest: ts("2024-01-01T00:00:00Z")}},
		{name: "no schedule", tt: none, r: Restriction{Earliest: ts("2024-01-01T00:00:00Z"), Catchup: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var now time.Time
			if tc.now != "" {
				now = ts(tc.now)
			}
			got, ok := tc.tt.Next(tc.last, tc.r, now)
			if tc.want == nil {
				if ok {
					t.Fatalf("Next = %s, want none", fmtIv(got))
				}
				return
			}
			checkNext(t, got, ok, *tc.want)
		})
	}
}

func TestInfer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tt   Timetable
		at   string
		want Interval
	}{
		// Airflow's test_cron_infer_manual_data_interval_alignment.
		{mustParse(t, "@daily", "UTC"), "2022-08-08T01:00:00Z", iv("2022-08-07T00:00:00Z", "2022-08-08T00:00:00Z")},
		{mustParse(t, "@daily", "UTC"), "2022-08-08T00:00:00Z", iv("2022-08-07T00:00:00Z", "2022-08-08T00:00:00Z")},
		// Midnight in Amsterdam (CEST) is 22:00Z.
		{mustParse(t, "@daily", "Europe/Amsterdam"), "2022-08-08T01:00:00Z", iv("2022-08-06T22:00:00Z", "2022-08-07T22:00:00Z")},
		{mustEvery(t, time.Hour), "2022-08-08T10:17:00Z", iv("2022-08-08T09:17:00Z", "2022-08-08T10:17:00Z")},
		{mustParse(t, "@once", "UTC"), "2022-08-08T10:17:00Z", iv("2022-08-08T10:17:00Z", "2022-08-08T10:17:00Z")},
		{mustParse(t, "@none", "UTC"), "2022-08-08T10:17:00Z", iv("2022-08-08T10:17:00Z", "2022-08-08T10:17:00Z")},
	}
	for _, tc := range tests {
		got := tc.tt.Infer(ts(tc.at).In(time.FixedZone("X", 3600)))
		if !got.Start.Equal(tc.want.Start) || !got.End.Equal(tc.want.End) || got.Start.Location() != time.UTC {
			t.Errorf("%s.Infer(%s) = %s, want %s", tc.tt, tc.at, fmtIv(got), fmtIv(tc.want))
		}
	}
}

func TestEveryErrors(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Hour, -1} {
		if _, err := Every(d); err == nil {
			t.Errorf("Every(%v) succeeded, want error", d)
		}
	}
	tt := mustEvery(t, 90*time.Minute)
	if tt.String() != "1h30m0s" || !tt.Periodic() {
		t.Errorf("Every(90m): String %q Periodic %v", tt.String(), tt.Periodic())
	}
}

func TestFloorSinceEpoch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		at   string
		d    time.Duration
		want string
	}{
		{"2024-03-15T13:37:00Z", time.Hour, "2024-03-15T13:00:00Z"},
		{"2024-03-15T13:00:00Z", time.Hour, "2024-03-15T13:00:00Z"},
		{"2024-03-15T13:37:00Z", 7 * 24 * time.Hour, "2024-03-14T00:00:00Z"},
		{"1969-12-31T23:30:00Z", time.Hour, "1969-12-31T23:00:00Z"},
		{"2024-03-15T13:37:00Z", 7 * time.Minute, time.Unix(ts("2024-03-15T13:37:00Z").Unix()/420*420, 0).UTC().Format(time.RFC3339)},
	}
	for _, tc := range tests {
		if got := floorSinceEpoch(ts(tc.at), tc.d); !got.Equal(ts(tc.want)) {
			t.Errorf("floorSinceEpoch(%s, %v) = %s, want %s", tc.at, tc.d, got.Format(time.RFC3339), tc.want)
		}
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	daily := mustParse(t, "@daily", "UTC")
	tests := []struct {
		name     string
		tt       Timetable
		from, to string
		r        Restriction
		want     []Interval
	}{
		{name: "inclusive", tt: daily, from: "2024-01-01T00:00:00Z", to: "2024-01-03T00:00:00Z",
			want: ivs("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z")},
		{name: "unaligned bounds", tt: daily, from: "2024-01-01T10:00:00Z", to: "2024-01-03T10:00:00Z",
			want: ivs("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z")},
		{name: "bounded by start and end date, catchup ignored", tt: daily, from: "2024-01-01T00:00:00Z", to: "2024-01-31T00:00:00Z",
			r:    Restriction{Earliest: ts("2024-01-03T00:00:00Z"), Latest: ts("2024-01-04T00:00:00Z")},
			want: ivs("2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z", "2024-01-04T00:00:00Z", "2024-01-05T00:00:00Z")},
		{name: "outside start and end date", tt: daily, from: "2024-01-01T00:00:00Z", to: "2024-01-31T00:00:00Z",
			r: Restriction{Earliest: ts("2024-02-01T00:00:00Z")}},
		{name: "delta", tt: mustEvery(t, 6*time.Hour), from: "2024-01-01T00:00:00Z", to: "2024-01-01T12:00:00Z",
			want: ivs("2024-01-01T00:00:00Z", "2024-01-01T06:00:00Z", "2024-01-01T06:00:00Z", "2024-01-01T12:00:00Z", "2024-01-01T12:00:00Z", "2024-01-01T18:00:00Z")},
		{name: "once", tt: mustParse(t, "@once", "UTC"), from: "2024-01-01T00:00:00Z", to: "2024-01-31T00:00:00Z",
			want: ivs("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")},
		{name: "none", tt: mustParse(t, "", "UTC"), from: "2024-01-01T00:00:00Z", to: "2024-01-31T00:00:00Z"},
		{name: "amsterdam daily across spring", tt: mustParse(t, "@daily", "Europe/Amsterdam"), from: "2024-03-29T23:00:00Z", to: "2024-03-31T22:00:00Z",
			want: ivs("2024-03-29T23:00:00Z", "2024-03-30T23:00:00Z", "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z", "2024-03-31T22:00:00Z", "2024-04-01T22:00:00Z")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Range(tc.tt, ts(tc.from), ts(tc.to), tc.r)
			if err != nil {
				t.Fatal(err)
			}
			checkIntervals(t, got, tc.want)
		})
	}

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		if _, err := Range(daily, ts("2024-01-02T00:00:00Z"), ts("2024-01-01T00:00:00Z"), Restriction{}); err == nil {
			t.Error("Range with to before from succeeded")
		}
		if _, err := Range(mustEvery(t, time.Second), ts("2024-01-01T00:00:00Z"), ts("2025-01-01T00:00:00Z"), Restriction{}); err == nil {
			t.Error("Range over 31M intervals succeeded")
		}
		if _, err := Range(nil, ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:00:00Z"), Restriction{}); err == nil {
			t.Error("Range of nil succeeded")
		}
	})

	t.Run("a decade of daily past the tz table", func(t *testing.T) {
		t.Parallel()
		got, err := Range(mustParse(t, "30 2 * * *", "Europe/Amsterdam"), ts("2035-01-01T00:00:00Z"), ts("2045-01-01T00:00:00Z"), Restriction{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3653 { // one run a day, 2035-01-01 .. 2044-12-31
			t.Fatalf("got %d intervals, want 3653", len(got))
		}
		for i, g := range got {
			if l := g.End.Sub(g.Start); l != 23*time.Hour && l != 24*time.Hour && l != 25*time.Hour {
				t.Fatalf("interval %d %s is %v long", i, fmtIv(g), l)
			}
		}
	})

	t.Run("a year of hourly", func(t *testing.T) {
		t.Parallel()
		got, err := Range(mustParse(t, "@hourly", "Europe/Amsterdam"), ts("2023-01-01T00:00:00Z"), ts("2023-12-31T23:00:00Z"), Restriction{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 8760 {
			t.Fatalf("got %d intervals, want 8760", len(got))
		}
		for i, g := range got {
			if g.End.Sub(g.Start) != time.Hour || (i > 0 && !g.Start.Equal(got[i-1].End)) {
				t.Fatalf("interval %d %s is not the hour after %s", i, fmtIv(g), fmtIv(got[i-1]))
			}
		}
	})
}

// TestCronSpecBruteForce compares the naive next/prev search with a
// minute-by-minute scan.
func TestCronSpecBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	exprs := []string{
		"* * * * *", "*/7 * * * *", "5 */3 * * *", "0 0 * * *", "59 23 31 * *",
		"0 0 13 * 5", "15 10 * * 1-5", "0 12 1,15 * *", "30 2 * 3,11 0", "0 0 29 * *",
		"0 9-17/2 * * mon-fri", "0 0 */1 * 1",
	}
	for _, expr := range exprs {
		spec, err := parseCron(expr)
		if err != nil {
			t.Fatal(err)
		}
		matches := func(m time.Time) bool {
			return spec.month&(1<<uint(m.Month())) != 0 && spec.dayMatches(m.Year(), m.Month(), m.Day()) &&
				spec.hour&(1<<uint(m.Hour())) != 0 && spec.minute&(1<<uint(m.Minute())) != 0
		}
		for range 20 {
			n := time.Unix(ts("2023-01-01T00:00:00Z").Unix()+rng.Int63n(3*365*86400), int64(rng.Intn(3))*int64(time.Second)*17).UTC()
			if rng.Intn(3) == 0 {
				n = n.Truncate(time.Minute)
			}
			want := n.Truncate(time.Minute).Add(time.Minute)
			for !matches(want) {
				want = want.Add(time.Minute)
			}
			if got, ok := spec.next(n); !ok || !got.Equal(want) {
				t.Errorf("%q next(%s) = %s, want %s", expr, n, got, want)
			}
			want = n.Truncate(time.Minute)
			if want.Equal(n) {
				want = want.Add(-time.Minute)
			}
			for !matches(want) {
				want = want.Add(-time.Minute)
			}
			if got, ok := spec.prev(n); !ok || !got.Equal(want) {
				t.Errorf("%q prev(%s) = %s, want %s", expr, n, got, want)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "@once", "@daily", "30 2 * * *", "*/15 * * * *", "61 * * * *", "0 0 30 2 *",
		"0 0 * * 5-7", "0 0 * * 1-7/2", "TZ=x", "1-5/0 * * * *", "0 0 L * *", "@every 1h", "0 0 ? * 1",
	} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		f.Fatal(err)
	}
	start := ts("2024-11-02T20:00:00Z")
	f.Fuzz(func(t *testing.T, expr string) {
		tt, err := Parse(expr, loc)
		if err != nil {
			return
		}
		_ = tt.String()
		tt.Infer(start)
		r := Restriction{Earliest: start, Catchup: true}
		var last *Interval
		for range 5 {
			got, ok := tt.Next(last, r, start)
			if !ok {
				break
			}
			if tt.Periodic() && !got.End.After(got.Start) {
				t.Fatalf("%q: empty interval %s", expr, fmtIv(got))
			}
			last = &got
		}
		if _, ok := tt.Next(nil, Restriction{Earliest: start}, start.Add(72*time.Hour)); !ok && tt.Periodic() {
			t.Fatalf("%q: no run without catchup", expr)
		}
	})
}

func BenchmarkNextHourly(b *testing.B) {
	tt := mustParse(b, "@hourly", "Europe/Amsterdam")
	r := Restriction{Earliest: ts("2023-01-01T00:00:00Z"), Catchup: true}
	first, _ := tt.Next(nil, r, time.Time{})
	last, stop := first, ts("2033-01-01T00:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		if last, _ = tt.Next(&last, r, time.Time{}); last.Start.After(stop) {
			last = first // stay within the zone's transition table
		}
	}
}

func BenchmarkNextDailyFixed(b *testing.B) {
	tt := mustParse(b, "30 2 * * *", "Europe/Amsterdam")
	r := Restriction{Earliest: ts("2023-01-01T00:00:00Z"), Catchup: true}
	first, _ := tt.Next(nil, r, time.Time{})
	last, stop := first, ts("2033-01-01T00:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		if last, _ = tt.Next(&last, r, time.Time{}); last.Start.After(stop) {
			last = first // stay within the zone's transition table
		}
	}
}

// BenchmarkCatchupYearHourly computes a year (8,760) of consecutive hourly
// intervals per operation.
func BenchmarkCatchupYearHourly(b *testing.B) {
	tt := mustParse(b, "@hourly", "Europe/Amsterdam")
	from, to := ts("2023-01-01T00:00:00Z"), ts("2023-12-31T23:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		got, err := Range(tt, from, to, Restriction{})
		if err != nil || len(got) != 8760 {
			b.Fatalf("%d intervals, %v", len(got), err)
		}
	}
}
