package timetable_test

import (
	"fmt"
	"time"

	"github.com/trellisdag/trellis/internal/timetable"
)

// A daily 02:30 schedule in New York catching up across the 2024 spring
// forward: 02:30 on March 10 does not exist, so that run's logical date is
// 03:30 EDT, and the interval after it is 23 hours long.
func Example() {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	tt, err := timetable.Parse("30 2 * * *", ny)
	if err != nil {
		panic(err)
	}
	r := timetable.Restriction{
		Earliest: time.Date(2024, 3, 8, 0, 0, 0, 0, ny), // not on the schedule: aligned to 02:30
		Catchup:  true,
	}
	var last *timetable.Interval
	for range 4 {
		iv, ok := tt.Next(last, r, time.Time{})
		if !ok {
			break
		}
		fmt.Println(iv.Start.In(ny).Format("Jan 2 15:04 MST"), "→", iv.End.In(ny).Format("Jan 2 15:04 MST"), iv.End.Sub(iv.Start))
		last = &iv
	}

	// Without catchup, the newest interval that has ended by now.
	now := time.Date(2024, 3, 15, 12, 0, 0, 0, ny)
	r.Catchup = false
	iv, _ := tt.Next(nil, r, now)
	fmt.Println(iv.Start.In(ny).Format("Jan 2 15:04 MST"), "→", iv.End.In(ny).Format("Jan 2 15:04 MST"))

	// Output:
	// Mar 8 02:30 EST → Mar 9 02:30 EST 24h0m0s
	// Mar 9 02:30 EST → Mar 10 03:30 EDT 24h0m0s
	// Mar 10 03:30 EDT → Mar 11 02:30 EDT 23h0m0s
	// Mar 11 02:30 EDT → Mar 12 02:30 EDT 24h0m0s
	// Mar 14 02:30 EDT → Mar 15 02:30 EDT
}

// A backfill of an hourly schedule across the 2024 fall back in Chicago:
// 01:00 occurs twice and is scheduled twice.
func ExampleRange() {
	chi, err := time.LoadLocation("America/Chicago")
	if err != nil {
		panic(err)
	}
	tt, err := timetable.Parse("@hourly", chi)
	if err != nil {
		panic(err)
	}
	ivs, err := timetable.Range(tt,
		time.Date(2024, 11, 3, 0, 0, 0, 0, chi),
		time.Date(2024, 11, 3, 2, 0, 0, 0, chi),
		timetable.Restriction{})
	if err != nil {
		panic(err)
	}
	for _, iv := range ivs {
		fmt.Println(iv.Start.In(chi).Format("15:04 MST"), "→", iv.End.In(chi).Format("15:04 MST"))
	}
	// Output:
	// 00:00 CDT → 01:00 CDT
	// 01:00 CDT → 01:00 CST
	// 01:00 CST → 02:00 CST
	// 02:00 CST → 03:00 CST
}

func ExampleEvery() {
	tt, err := timetable.Every(6 * time.Hour)
	if err != nil {
		panic(err)
	}
	r := timetable.Restriction{Earliest: time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC), Catchup: true}
	iv, _ := tt.Next(nil, r, time.Time{})
	fmt.Println(iv.Start.Format(time.RFC3339), iv.End.Format(time.RFC3339))
	// Output: 2024-01-01T01:00:00Z 2024-01-01T07:00:00Z
}
