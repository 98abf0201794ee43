// Package schedulertest provides a fake clock for tests of code that runs a
// scheduler, so that days of schedule run in milliseconds without sleeping.
package schedulertest
