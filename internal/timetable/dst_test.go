package timetable

import (
	"testing"
	"time"
)

// Expected values in this file are derived by hand from Airflow 2.10's
// airflow/timetables/_cron.py:
//
//   - fixed-hour crons: CronMixin._get_next takes the next *naive* wall time
//     from croniter and returns convert_to_utc(make_aware(scheduled, tz));
//     make_aware (airflow/utils/timezone.py) sets fold=1 and calls pendulum's
//     Timezone.convert, so a skipped wall time moves forward by the gap and a
//     repeated one takes its later (post-transition) occurrence;
//   - crons whose hour field is "*" (_covers_every_hour) return
//     current.in_timezone(tz) + (scheduled - naive), i.e. they advance the
//     wall-clock distance in elapsed time.
//
// 2024 transitions used (UTC):
//   Europe/Amsterdam  +01→+02 2024-03-31T01:00Z, +02→+01 2024-10-27T01:00Z
//   Europe/London     +00→+01 2024-03-31T01:00Z, +01→+00 2024-10-27T01:00Z
//   America/New_York  -05→-04 2024-03-10T07:00Z, -04→-05 2024-11-03T06:00Z
//   America/Chicago   -06→-05 2024-03-10T08:00Z, -05→-06 2024-11-03T07:00Z

func TestDST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		expr  string
		start string // DAG start date (on schedule), UTC
		want  []Interval
	}{
		{
			// Start 03-29 02:30 CET. The 31st's 02:30 does not exist: make_aware
			// moves it to 03:30 CEST (01:30Z), so that run's interval is 24h of
			// elapsed time and the next one, 03:30 CEST → 02:30 CEST, 23h.
			// The logical date of the 31st is 03:30 CEST.
			name: "amsterdam spring fixed", zone: "Europe/Amsterdam", expr: "30 2 * * *",
			start: "2024-03-29T01:30:00Z",
			want: ivs(
				"2024-03-29T01:30:00Z", "2024-03-30T01:30:00Z",
				"2024-03-30T01:30:00Z", "2024-03-31T01:30:00Z",
				"2024-03-31T01:30:00Z", "2024-04-01T00:30:00Z",
				"2024-04-01T00:30:00Z", "2024-04-02T00:30:00Z",
			),
		},
		{
			// 10-27 02:30 occurs at 00:30Z (CEST) and 01:30Z (CET); fold=1 picks
			// 01:30Z, so the interval ending then is 25h long.
			name: "amsterdam fall fixed", zone: "Europe/Amsterdam", expr: "30 2 * * *",
			start: "2024-10-26T00:30:00Z",
			want: ivs(
				"2024-10-26T00:30:00Z", "2024-10-27T01:30:00Z",
				"2024-10-27T01:30:00Z", "2024-10-28T01:30:00Z",
			),
		},
		{
			// Every hour: 02:00 CEST (00:00Z) → naive next 03:00 → +1h elapsed =
			// 01:00Z (02:00 CET); from there naive 02:00 → 03:00 → 02:00Z. The
			// repeated 02:00 is scheduled twice and every interval is 1h.
			name: "amsterdam fall hourly", zone: "Europe/Amsterdam", expr: "@hourly",
			start: "2024-10-26T22:00:00Z",
			want: ivs(
				"2024-10-26T22:00:00Z", "2024-10-26T23:00:00Z",
				"2024-10-26T23:00:00Z", "2024-10-27T00:00:00Z",
				"2024-10-27T00:00:00Z", "2024-10-27T01:00:00Z",
				"2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z",
				"2024-10-27T02:00:00Z", "2024-10-27T03:00:00Z",
			),
		},
		{
			// 01:00 CET (00:00Z) → naive next 02:00 → +1h = 01:00Z, which is
			// 03:00 CEST; the nonexistent 02:00 is simply not a wall time.
			name: "amsterdam spring hourly", zone: "Europe/Amsterdam", expr: "0 * * * *",
			start: "2024-03-30T23:00:00Z",
			want: ivs(
				"2024-03-30T23:00:00Z", "2024-03-31T00:00:00Z",
				"2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z",
				"2024-03-31T01:00:00Z", "2024-03-31T02:00:00Z",
			),
		},
		{
			// "*/2" does not cover every hour, so the fixed-hour rule applies:
			// 02:00 is the later occurrence (01:00Z) and 02:00 CEST (00:00Z) is
			// never scheduled, giving a 3h interval.
			name: "amsterdam fall every two hours", zone: "Europe/Amsterdam", expr: "0 */2 * * *",
			start: "2024-10-26T22:00:00Z",
			want: ivs(
				"2024-10-26T22:00:00Z", "2024-10-27T01:00:00Z",
				"2024-10-27T01:00:00Z", "2024-10-27T03:00:00Z",
				"2024-10-27T03:00:00Z", "2024-10-27T05:00:00Z",
			),
		},
		{
			// 01:30 on 03-31 does not exist in London: → 02:30 BST (01:30Z).
			name: "london spring fixed", zone: "Europe/London", expr: "30 1 * * *",
			start: "2024-03-29T01:30:00Z",
			want: ivs(
				"2024-03-29T01:30:00Z", "2024-03-30T01:30:00Z",
				"2024-03-30T01:30:00Z", "2024-03-31T01:30:00Z",
				"2024-03-31T01:30:00Z", "2024-04-01T00:30:00Z",
			),
		},
		{
			// 01:30 on 10-27 is 00:30Z (BST) and 01:30Z (GMT): the later wins.
			name: "london fall fixed", zone: "Europe/London", expr: "30 1 * * *",
			start: "2024-10-26T00:30:00Z",
			want: ivs(
				"2024-10-26T00:30:00Z", "2024-10-27T01:30:00Z",
				"2024-10-27T01:30:00Z", "2024-10-28T01:30:00Z",
			),
		},
		{
			// 02:30 on 03-10 does not exist: → 03:30 EDT (07:30Z).
			name: "new york spring fixed", zone: "America/New_York", expr: "30 2 * * *",
			start: "2024-03-08T07:30:00Z",
			want: ivs(
				"2024-03-08T07:30:00Z", "2024-03-09T07:30:00Z",
				"2024-03-09T07:30:00Z", "2024-03-10T07:30:00Z",
				"2024-03-10T07:30:00Z", "2024-03-11T06:30:00Z",
				"2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z",
			),
		},
		{
			// 01:30 on 11-03 is 05:30Z (EDT) and 06:30Z (EST): the later wins.
			name: "new york fall fixed", zone: "America/New_York", expr: "30 1 * * *",
			start: "2024-11-02T05:30:00Z",
			want: ivs(
				"2024-11-02T05:30:00Z", "2024-11-03T06:30:00Z",
				"2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z",
			),
		},
		{
			// Half-hourly covers every hour: 30 minutes of elapsed time each,
			// through 01:00/01:30 EDT and again 01:00/01:30 EST.
			name: "new york fall half-hourly", zone: "America/New_York", expr: "*/30 * * * *",
			start: "2024-11-03T04:30:00Z",
			want: ivs(
				"2024-11-03T04:30:00Z", "2024-11-03T05:00:00Z",
				"2024-11-03T05:00:00Z", "2024-11-03T05:30:00Z",
				"2024-11-03T05:30:00Z", "2024-11-03T06:00:00Z",
				"2024-11-03T06:00:00Z", "2024-11-03T06:30:00Z",
				"2024-11-03T06:30:00Z", "2024-11-03T07:00:00Z",
			),
		},
		{
			// 01:00 EST (06:00Z) → naive 02:00 → +1h = 07:00Z = 03:00 EDT.
			name: "new york spring hourly", zone: "America/New_York", expr: "0 * * * *",
			start: "2024-03-10T05:00:00Z",
			want: ivs(
				"2024-03-10T05:00:00Z", "2024-03-10T06:00:00Z",
				"2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z",
				"2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z",
			),
		},
		{
			// 02:30 on 03-10 does not exist in Chicago: → 03:30 CDT (08:30Z).
			name: "chicago spring fixed", zone: "America/Chicago", expr: "30 2 * * *",
			start: "2024-03-08T08:30:00Z",
			want: ivs(
				"2024-03-08T08:30:00Z", "2024-03-09T08:30:00Z",
				"2024-03-09T08:30:00Z", "2024-03-10T08:30:00Z",
				"2024-03-10T08:30:00Z", "2024-03-11T07:30:00Z",
			),
		},
		{
			// 01:30 on 11-03 is 06:30Z (CDT) and 07:30Z (CST): the later wins.
			name: "chicago fall fixed", zone: "America/Chicago", expr: "30 1 * * *",
			start: "2024-11-02T06:30:00Z",
			want: ivs(
				"2024-11-02T06:30:00Z", "2024-11-03T07:30:00Z",
				"2024-11-03T07:30:00Z", "2024-11-04T07:30:00Z",
			),
		},
		{
			// 00:00 CDT (05:00Z), 01:00 CDT (06:00Z), 01:00 CST (07:00Z), 02:00 CST.
			name: "chicago fall hourly", zone: "America/Chicago", expr: "@hourly",
			start: "2024-11-03T05:00:00Z",
			want: ivs(
				"2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z",
				"2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z",
				"2024-11-03T07:00:00Z", "2024-11-03T08:00:00Z",
			),
		},
		{
			// Los Angeles, fixed daily at 02:30 across its spring gap
			// (-08→-07 at 2024-03-10T10:00Z): → 03:30 PDT (10:30Z).
			name: "los angeles spring fixed", zone: "America/Los_Angeles", expr: "30 2 * * *",
			start: "2024-03-08T10:30:00Z",
			want: ivs(
				"2024-03-08T10:30:00Z", "2024-03-09T10:30:00Z",
				"2024-03-09T10:30:00Z", "2024-03-10T10:30:00Z",
				"2024-03-10T10:30:00Z", "2024-03-11T09:30:00Z",
			),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tt := mustParse(t, tc.expr, tc.zone)
			got := catchupRuns(t, tt, Restriction{Earliest: ts(tc.start), Catchup: true}, len(tc.want))
			checkIntervals(t, got, tc.want)
			// Backfilling the same logical dates must give the same intervals.
			rng, err := Range(tt, tc.want[0].Start, tc.want[len(tc.want)-1].Start, Restriction{})
			if err != nil {
				t.Fatal(err)
			}
			checkIntervals(t, rng, tc.want)
		})
	}
}

// TestDSTQuirks pins down what Airflow does (not what one might expect) when
// a fixed-hour schedule meets a DST transition.
func TestDSTQuirks(t *testing.T) {
	t.Parallel()

	t.Run("no catchup on the day of a gap", func(t *testing.T) {
		t.Parallel()
		// New York, 30 2 * * *, now 2024-03-10T12:00Z (08:00 EDT).
		// _skip_to_latest: last_start = _get_prev(now): naive 08:00 → croniter
		// 02:30 → make_aware → 03:30 EDT = 07:30Z. next_start = 03-11 02:30 EDT
		// (06:30Z) > now, so new_start = _get_prev(07:30Z): naive 03:30 →
		// croniter 02:30 → 07:30Z again (the gap maps it back onto itself).
		// Airflow therefore schedules [03-10 07:30Z, 03-11 06:30Z], which has
		// not ended yet, instead of the interval that ended at 07:30Z.
		tt := mustParse(t, "30 2 * * *", "America/New_York")
		r := Restriction{Earliest: ts("2024-01-01T05:00:00Z")}
		got, ok := tt.Next(nil, r, ts("2024-03-10T12:00:00Z"))
		checkNext(t, got, ok, iv("2024-03-10T07:30:00Z", "2024-03-11T06:30:00Z"))
		// Two days later it is back to normal: the newest ended interval.
		got, ok = tt.Next(nil, r, ts("2024-03-12T12:00:00Z"))
		checkNext(t, got, ok, iv("2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z"))
	})

	t.Run("start date the day before a gap is skipped", func(t *testing.T) {
		t.Parallel()
		// New York, 30 2 * * *, start date 03-09 02:30 EST (07:30Z), which is
		// on the schedule. _align_to_next: next_time = _get_next(start) = 03-10
		// 02:30 → 03:30 EDT (07:30Z); _get_prev(next_time): naive 03:30 →
		// croniter 02:30 → 07:30Z, i.e. next_time itself, which differs from
		// the start date, so Airflow aligns the start date to next_time and
		// the first run is the 10th, not the 9th.
		tt := mustParse(t, "30 2 * * *", "America/New_York")
		got, ok := tt.Next(nil, Restriction{Earliest: ts("2024-03-09T07:30:00Z"), Catchup: true}, time.Time{})
		checkNext(t, got, ok, iv("2024-03-10T07:30:00Z", "2024-03-11T06:30:00Z"))
	})

	t.Run("manual run in the first occurrence of a fold", func(t *testing.T) {
		t.Parallel()
		// New York, 30 1 * * *, triggered at 01:45 EDT (05:45Z) on 11-03.
		// _align_to_prev: _get_prev: naive 01:45 → croniter 01:30 → fold=1 →
		// 01:30 EST = 06:30Z, which is *after* the trigger. Its _get_next is the
		// next day, so end = 06:30Z; start = _get_prev(06:30Z) = 11-02 01:30
		// EDT = 05:30Z.
		tt := mustParse(t, "30 1 * * *", "America/New_York")
		checkIntervals(t, []Interval{tt.Infer(ts("2024-11-03T05:45:00Z"))},
			ivs("2024-11-02T05:30:00Z", "2024-11-03T06:30:00Z"))
	})

	t.Run("unaligned start inside a gap", func(t *testing.T) {
		t.Parallel()
		// Amsterdam, 30 2 * * *, start date 2024-03-31 00:00 CET (03-30T23:00Z).
		// _align_to_next: next naive 02:30 → 03:30 CEST = 01:30Z.
		tt := mustParse(t, "30 2 * * *", "Europe/Amsterdam")
		got, ok := tt.Next(nil, Restriction{Earliest: ts("2024-03-30T23:00:00Z"), Catchup: true}, time.Time{})
		checkNext(t, got, ok, iv("2024-03-31T01:30:00Z", "2024-04-01T00:30:00Z"))
	})

	t.Run("hourly infer in the repeated hour", func(t *testing.T) {
		t.Parallel()
		// Amsterdam, @hourly, triggered at 02:10 CET (01:10Z) on 10-27: the
		// elapsed-time rule gives the hour that ended at 02:00 CET (01:00Z).
		tt := mustParse(t, "@hourly", "Europe/Amsterdam")
		checkIntervals(t, []Interval{tt.Infer(ts("2024-10-27T01:10:00Z"))},
			ivs("2024-10-27T00:00:00Z", "2024-10-27T01:00:00Z"))
	})
}

func TestWallToInstant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		zone, wall, want string
	}{
		{"Europe/Amsterdam", "2024-03-31T02:30:00Z", "2024-03-31T01:30:00Z"}, // gap → +1h
		{"Europe/Amsterdam", "2024-03-31T02:00:00Z", "2024-03-31T01:00:00Z"}, // gap start
		{"Europe/Amsterdam", "2024-03-31T03:00:00Z", "2024-03-31T01:00:00Z"}, // first wall time after the gap
		{"Europe/Amsterdam", "2024-10-27T02:30:00Z", "2024-10-27T01:30:00Z"}, // fold → later
		{"Europe/Amsterdam", "2024-10-27T02:00:00Z", "2024-10-27T01:00:00Z"},
		{"Europe/Amsterdam", "2024-10-27T01:59:00Z", "2024-10-26T23:59:00Z"}, // before the fold
		{"Europe/Amsterdam", "2024-10-27T03:00:00Z", "2024-10-27T02:00:00Z"},
		{"America/New_York", "2024-11-03T01:00:00Z", "2024-11-03T06:00:00Z"},
		{"Australia/Lord_Howe", "2024-04-07T01:45:00Z", "2024-04-06T15:15:00Z"}, // 30-minute fold, later (+10:30)
		{"Australia/Lord_Howe", "2024-10-06T02:15:00Z", "2024-10-05T15:45:00Z"}, // 30-minute gap → 02:45 +11
		{"UTC", "2024-10-27T02:30:00Z", "2024-10-27T02:30:00Z"},
		// Past the zone's transition table Go derives zones from the POSIX
		// rule (and ZoneBounds misreports Dec 31 of leap years, which once
		// made this loop forever).
		{"Europe/Amsterdam", "2040-12-31T02:30:00Z", "2040-12-31T01:30:00Z"},
		{"Europe/Amsterdam", "2040-03-25T02:30:00Z", "2040-03-25T01:30:00Z"},
		{"Europe/Amsterdam", "2040-10-28T02:30:00Z", "2040-10-28T01:30:00Z"},
	}
	for _, tc := range tests {
		loc, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := wallToInstant(ts(tc.wall), loc); !got.Equal(ts(tc.want)) {
			t.Errorf("%s wall %s = %s, want %s", tc.zone, tc.wall, got.Format(time.RFC3339), tc.want)
		}
	}
}
