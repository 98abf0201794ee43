// Package timetable computes the data intervals of DAG runs with the
// semantics of Airflow 2.8-2.10's data-interval timetables:
// CronDataIntervalTimetable (a cron expression or preset),
// DeltaDataIntervalTimetable (a fixed duration, see Every), OnceTimetable
// (@once) and NullTimetable (no schedule). It is pure computation: the clock
// is passed in, and nothing is read or written.
//
// # Runs and intervals
//
// A run covers a data interval [Start, End). Its logical date is Start, and
// the scheduler creates it once End has passed: the daily run with logical
// date 2024-01-01 runs just after 2024-01-02 00:00. Timetable.Next is
// Airflow's next_dagrun_info; Timetable.Infer gives the interval of a manual
// run (for a daily schedule triggered at 01:00 on the 25th, the 24th).
//
// A start date that is not on the schedule is aligned forward to the next
// schedule time. With Catchup every missed interval is returned in order.
// Without it only the newest interval that has ended by now is returned (for
// a daily schedule at 10:00 on the 15th: the 14th), but never one before the
// aligned start date; if the start date is later, the first run simply waits.
// The end date (Restriction.Latest) stops scheduling after it; an interval
// starting exactly at the end date still runs. After a schedule change, the
// last run's End is aligned *back* onto the new schedule (Airflow's
// _align_to_prev), so a daily run followed by a change to "30 16 * * *" gives
// [16:30 yesterday, 16:30 today), overlapping the last run's interval.
//
// @once runs once, with the empty interval [start date, start date],
// regardless of catchup. Without a schedule, Next never returns a run and a
// manual run's interval is [t, t].
//
// Every(d) steps d of elapsed time from the start date without aligning it.
// Without catchup it rounds now down to a multiple of d counted from the
// Unix epoch and returns the interval ending there (Airflow's
// DeltaDataIntervalTimetable._skip_to_latest since apache/airflow#35391),
// which is not on the start date's grid; for Every(24h) it ends at the last
// UTC midnight.
//
// All returned times are in UTC, as in Airflow; inputs may be in any zone.
//
// # Time zones and DST
//
// A cron expression is read on the wall clock of the location given to
// Parse, as Airflow does in airflow/timetables/_cron.py (CronMixin._get_next
// and _get_prev): croniter finds the next or previous matching wall time on a
// naive clock, and then
//
//   - if the hour field is not "*" (croniter normalises a full 0-23 range to
//     "*"; see _covers_every_hour), the wall time is localised with
//     make_aware (airflow/utils/timezone.py), which sets fold=1 before
//     pendulum's Timezone.convert. A wall time that occurs twice when clocks
//     go back resolves to its later occurrence: "30 1 * * *" in New York on
//     2024-11-03 runs at 01:30 EST, and 01:30 EDT is never scheduled. A wall
//     time that does not exist when clocks go forward moves forward by the
//     gap: "30 2 * * *" in New York on 2024-03-10 runs at 03:30 EDT. The
//     intervals around a transition are therefore 23 or 25 hours long (or
//     24, for the shifted time);
//   - if the hour field is "*" (@hourly, "*/30 * * * *"), the wall-clock
//     distance to the matching time is added in elapsed time. The repeated
//     hour is scheduled twice, the skipped hour not at all, and every
//     interval keeps its real length (an @hourly interval is always 1h).
//
// Airflow's behaviour is followed even where it surprises: the previous
// schedule time of a shifted time is that time itself, so a start date at
// 02:30 the day before a spring-forward gap is aligned to the next day's
// 03:30, catchup=false on the day of the gap may return the interval that
// starts at the shifted time (and has not ended yet), and a manual run
// triggered in the first occurrence of a repeated hour may get an interval
// ending at the second occurrence. robfig/cron parses the expressions, but
// its own Next is not used: its DST handling differs from Airflow's.
//
// # Cron syntax
//
// Parse accepts five fields (minute, hour, day of month, month, day of week)
// with numbers, names, ranges, steps, lists, and "*" (also "?" in the day
// fields), plus 7 for Sunday as croniter does, and the presets @hourly,
// @daily, @midnight, @weekly, @monthly, @quarterly, @yearly and @annually.
// Day matching follows croniter: when neither day field counts as "*", a day
// matches if either field does ("0 0 13 * 5" is the 13th and every Friday).
// Not supported: seconds or year fields, L, W, #, H, and @every or
// CRON_TZ= (robfig/cron extensions that Airflow does not have).
package timetable
