// Package pools is the one home of pool rules outside the scheduler: which
// pools exist (the binary declares them; the default pool always exists),
// their size in force (set at run time, or declared), their occupancy (slots
// taken by tries in flight) and the checks on a new size. The CLI (pools list,
// pools set) and the API (GET /pools, PATCH /pools/{pool}) both go through it.
package pools
