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
// # Access control
//
// Off only when the server listens on loopback (CheckListen refuses anything else
// without tokens). Tokens come from a file or a directory of files (a mounted
// Kubernetes Secret), one "token role [name]" per line; role viewer reads,
// role operator also acts. The UI trades a token for a session cookie (HttpOnly,
// SameSite=Strict); state-changing requests need a JSON body, a same-origin
// Origin, and, with a session, the session's CSRF token in X-CSRF-Token.
package web
