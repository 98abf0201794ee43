// Package web is trellis's HTTP face: the REST API under /api/v1, the web UI
// (plain HTML, CSS and JavaScript embedded in the binary, no build step), live
// updates by Server-Sent Events, access control with bearer tokens and sessions,
// Prometheus metrics, and the health endpoints. `serve` mounts it next to the
// scheduler; see docs/web.md.
//
// # API
//
// Every route is listed once, in the route table of routes.go, from which both
// the server's mux and the OpenAPI 3 document (GET /api/v1/openapi.json) are
// built, so the two cannot drift apart. Errors are one shape everywhere:
//
//	{"error": {"code": "bad_request", "message": "limit \"x\": not a number", "field": "limit"}}
//
// Actions (trigger, clear, mark, pause) go through the store's legal transitions,
// wake the scheduler, and are recorded in the audit log.
//
// # Mapped tasks
//
// A mapped task is one entry of a run's task list and one row of the grid:
// its summary state (task.SummaryState), its instance count and its
// instances counted by state. GET .../tasks/{task}/instances pages its
// instances by map index (limit 1-1000, default 100; offset). Every per-task
// route takes the query parameter map_index for one instance
// (.../tasks/resize/tries/1/log?map_index=3); the path names the task by its
// own id only, and a map index the run's task lacks is a 404 naming the run,
// the task and the index. POST .../tasks/{task}/clear?map_index=3 clears one
// instance (runs.Clear with MapIndexes). See mapped.go.
//
// # Access control
//
// Off only when the server listens on loopback (CheckListen refuses anything else
// without tokens). Tokens come from a file or a directory of files (a mounted
// Kubernetes Secret), one "token role [name]" per line; role viewer reads,
// role operator also acts. The UI trades a token for a session cookie (HttpOnly,
// SameSite=Strict); state-changing requests need a JSON body, a same-origin
// Origin, and, with a session, the session's CSRF token in X-CSRF-Token.
package web
