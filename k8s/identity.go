package k8s

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Label and annotation keys trellis puts on every pod it creates. The same
// keys are used in both maps: the label holds LabelValue of the value (safe
// to select on, possibly shortened and hashed), the annotation holds the
// value itself, unchanged.
const (
	// LabelPrefix is the prefix of every trellis label and annotation key.
	LabelPrefix = "trellis.dev/"
	// LabelDAG holds the DAG id.
	LabelDAG = LabelPrefix + "dag"
	// LabelTask holds the task id.
	LabelTask = LabelPrefix + "task"
	// LabelRun holds the DAG run id.
	LabelRun = LabelPrefix + "run"
	// LabelTry holds the try number, in decimal.
	LabelTry = LabelPrefix + "try"
	// LabelInstance holds the id of the runner instance that owns the pod;
	// a runner watches only the pods labelled with its own instance.
	LabelInstance = LabelPrefix + "instance"
)

// hashLen is the number of base32 characters of SHA-256 used in names and
// label values: 12 characters, 60 bits.
const hashLen = 12

// maxNameLen is the longest pod name PodName returns: a DNS-1123 label.
const maxNameLen = validation.DNS1123LabelMaxLength

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// shortHash returns hashLen lowercase base32 characters of the SHA-256 of
// parts, each length-prefixed so that ("ab", "c") and ("a", "bc") differ.
func shortHash(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return lowerBase32.EncodeToString(h.Sum(nil))[:hashLen]
}

// TryIdentity names one try of one task instance: the pod that runs it, its
// labels and its annotations are all derived from it.
type TryIdentity struct {
	// DAGID is the DAG's id.
	DAGID string
	// RunID is the DAG run's id, e.g. "scheduled__2024-01-01T03:00:00+00:00".
	RunID string
	// TaskID is the task's id within the DAG.
	TaskID string
	// Try is the try number, counted from 1.
	Try int
	// Instance is the id of the runner instance that owns the pod. It is
	// not part of the pod name: a pod keeps its name if another runner
	// instance adopts it.
	Instance string
}

// PodName returns the pod name of this try; see the function PodName.
func (id TryIdentity) PodName() string {
	return PodName(id.DAGID, id.RunID, id.TaskID, id.Try)
}

// Labels returns the trellis labels of this try's pod (LabelDAG, LabelTask,
// LabelRun, LabelTry and, when Instance is set, LabelInstance), each value
// made safe by LabelValue.
func (id TryIdentity) Labels() map[string]string {
	labels := map[string]string{
		LabelDAG:  LabelValue(id.DAGID),
		LabelTask: LabelValue(id.TaskID),
		LabelRun:  LabelValue(id.RunID),
		LabelTry:  strconv.Itoa(id.Try),
	}
	if id.Instance != "" {
		labels[LabelInstance] = LabelValue(id.Instance)
	}
	return labels
}

// Annotations returns the same keys as Labels with the values unchanged, so
// that a pod can always be traced back to its DAG, run and task even when a
// label value had to be shortened.
func (id TryIdentity) Annotations() map[string]string {
	annotations := map[string]string{
		LabelDAG:  id.DAGID,
		LabelTask: id.TaskID,
		LabelRun:  id.RunID,
		LabelTry:  strconv.Itoa(id.Try),
	}
	if id.Instance != "" {
		annotations[LabelInstance] = id.Instance
	}
	return annotations
}

// InstanceSelector returns the label selector matching every pod owned by
// the runner instance, for listing and watching them.
func InstanceSelector(instance string) string {
	return LabelInstance + "=" + LabelValue(instance)
}

// PodName returns the name of the pod that runs one try of a task. The name
// is deterministic (the same try always gets the same name, so a runner that
// restarts finds the pod it created), differs between tries, and is a valid
// DNS-1123 label of at most 63 characters, hence also a valid pod name and
// hostname.
//
// It reads <dag>-<task>-<try>-<hash>: the DAG and task ids lowercased, with
// every run of other characters than [a-z0-9] turned into "-" and shortened
// to fit (the longer of the two first, each kept to at least half of the
// room), then the try number, then 12 base32 characters of a SHA-256 of the
// full (dagID, runID, taskID, try). The run id appears only in the hash. Two
// tries whose readable parts are cut to the same text still differ in the
// hash.
func PodName(dagID, runID, taskID string, try int) string {
	hash := shortHash("pod", dagID, runID, taskID, strconv.Itoa(try))
	tryPart := dnsLabelChars(strconv.Itoa(try))
	suffix := "-" + tryPart + "-" + hash
	budget := maxNameLen - len(suffix)

	dag, task := dnsLabelChars(dagID), dnsLabelChars(taskID)
	if len(dag)+1+len(task) > budget {
		// Shorten the longer one, or both to half, so that both stay
		// recognisable in `kubectl get pods`.
		half := (budget - 1) / 2
		switch {
		case len(task) <= half:
			dag = dag[:budget-1-len(task)]
		case len(dag) <= half:
			task = task[:budget-1-len(dag)]
		default:
			dag, task = dag[:half], task[:budget-1-half]
		}
		dag, task = strings.TrimRight(dag, "-"), strings.TrimRight(task, "-")
	}
	readable := dag
	if readable != "" && task != "" {
		readable += "-"
	}
	readable += task
	if readable == "" {
		return strings.TrimPrefix(suffix, "-")
	}
	return readable + suffix
}

// dnsLabelChars lowercases s and replaces every run of characters outside
// [a-z0-9] by one "-", trimming "-" at both ends.
func dnsLabelChars(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// LabelValue returns a valid Kubernetes label value for s: at most 63
// characters of [A-Za-z0-9_.-], beginning and ending with a letter or digit
// (or empty).
//
// A string that already is a valid label value is returned unchanged. Any
// other is made safe (every run of invalid characters becomes "_",
// non-alphanumerics are trimmed from both ends), cut to 50 characters and
// suffixed with "-" and 12 base32 characters of a SHA-256 of the original
// string, so that two different strings never share a value in practice.
// Store the original in an annotation if it must be recovered.
func LabelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	hash := shortHash("label", s)
	var b strings.Builder
	invalid := false
	for _, r := range s {
		if r < 0x80 && (isAlnum(byte(r)) || r == '-' || r == '_' || r == '.') {
			if invalid && b.Len() > 0 {
				b.WriteByte('_')
			}
			invalid = false
			b.WriteRune(r)
			continue
		}
		invalid = true
	}
	safe := b.String()
	budget := validation.LabelValueMaxLength - 1 - hashLen
	if len(safe) > budget {
		safe = safe[:budget]
	}
	safe = strings.TrimFunc(safe, func(r rune) bool { return r >= 0x80 || !isAlnum(byte(r)) })
	if safe == "" {
		return hash
	}
	return safe + "-" + hash
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// String returns "dag/run/task#try" for logs and error messages.
func (id TryIdentity) String() string {
	return fmt.Sprintf("%s/%s/%s#%d", id.DAGID, id.RunID, id.TaskID, id.Try)
}
