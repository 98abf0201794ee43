// Package assets lists the assets a binary knows (from its DAGs' outlets and
// asset schedules, and from the events in the store) with their producers,
// consumers and events, for the CLI and the API alike.
package assets
