// Package termination is the protocol by which a worker pod reports the end
// of its try to the runner without reaching it: a JSON Message in the base
// container's termination message (at most 4096 bytes, the kubelet's limit)
// and, when the result does not fit, the result on stdout between framing
// lines that the runner extracts from the saved log.
package termination
