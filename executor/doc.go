// Package executor defines the seam between the scheduler and whatever runs tries.
//
// An executor is asynchronous: Start hands a try over (a goroutine started, a
// process started, a pod created) and returns; the try's start and end arrive later
// through the ReportFunc the executor was built with. Implementations live in
// subpackages: local (the embedded default) and, for clusters, kubernetes.
package executor
