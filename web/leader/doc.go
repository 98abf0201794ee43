// Package leader makes sure exactly one process schedules a database's runs
// with the database's scheduler lock (store.Lock): an exclusive flock on a
// SQLite file, on one machine; a session advisory lock on a PostgreSQL
// database, from any machine, held by a connection of its own and released
// when the holder's connection ends (a process killed with -9 loses it at
// once: its socket closes). In a Kubernetes cluster a Lease may be taken
// first, so that a second replica waits instead of double-scheduling. A
// process that waits reports why (Config.Waiting), so that it can serve as a
// standby meanwhile.
//
// The Lease election follows client-go's leaderelection, with only a client
// of coordination.k8s.io/v1 Leases (Client): a replica takes the Lease when it
// does not exist, was released, is its own, or has not changed for
// leaseDurationSeconds as measured on the replica's own clock since it last
// saw the record change (so clocks need not agree). Every write carries the
// resourceVersion read, so of two replicas that try to take the Lease at once
// one gets a conflict and keeps waiting. The leader renews the Lease every
// RetryPeriod; if no renewal succeeds within RenewDeadline, or the Lease shows
// another holder, it stops leading. On a clean stop it releases the Lease
// (holder cleared, leaseDurationSeconds 1), so that the next replica takes over
// at once. The Lease record is the one client-go writes, so replicas built with
// either can share a Lease.
package leader
