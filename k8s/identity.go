package k8s

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/trellisdag/trellis/task"
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
	// LabelTask holds the task id; for a mapped task instance, the task's
	// own id ("resize", not "resize[3]").
	LabelTask = LabelPrefix + "task"
	// LabelMapIndex holds the map index of a mapped task instance's pod, in
	// decimal ("3" for "resize[3]"); pods of tasks that are not mapped do not
	// have it.
	LabelMapIndex = LabelPrefix + "map-index"
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
	// TaskID is the task instance's id within the DAG, as in executor.Key:
	// the task's id, or for a mapped task instance task.InstanceID of the
	// task's id and the map index ("resize[3]"). Labels and annotations
	// split it into LabelTask and LabelMapIndex.
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

// TaskAndIndex splits TaskID into the task's id and the map index (-1 for
// a task that is not mapped); see task.ParseInstanceID.
func (id TryIdentity) TaskAndIndex() (taskID string, mapIndex int) {
	return task.ParseInstanceID(id.TaskID)
}

// Labels returns the trellis labels of this try's pod (LabelDAG, LabelTask,
// LabelRun, LabelTry, LabelMapIndex for a mapped task instance and, when
// Instance is set, LabelInstance), each value made safe by LabelValue.
func (id TryIdentity) Labels() map[string]string {
	base, k := id.TaskAndIndex()
	labels := make(map[string]string, 6)
	labels[LabelDAG] = LabelValue(id.DAGID)
	labels[LabelTask] = LabelValue(base)
	labels[LabelRun] = LabelValue(id.RunID)
	labels[LabelTry] = strconv.Itoa(id.Try)
	if k >= 0 {
		labels[LabelMapIndex] = strconv.Itoa(k)
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
	base, k := id.TaskAndIndex()
	annotations := make(map[string]string, 8)
	annotations[LabelDAG] = id.DAGID
	annotations[LabelTask] = base
	annotations[LabelRun] = id.RunID
	annotations[LabelTry] = strconv.Itoa(id.Try)
	if k >= 0 {
		annotations[LabelMapIndex] = strconv.Itoa(k)
	}
	if id.Instance != "" {
		annotations[LabelInstance] = id.Instance
	}
	return annotations
}

// IdentityOf reads the identity of a trellis pod back from its annotations
// (which hold the values unshortened): TaskID is the task instance's id,
// "resize[3]" for a mapped instance, as the executor keys its tries. ok is
// false for a pod without the trellis annotations.
func IdentityOf(pod *corev1.Pod) (id TryIdentity, ok bool) {
	a := pod.Annotations
	dagID, okDAG := a[LabelDAG]
	taskID, okTask := a[LabelTask]
	runID, okRun := a[LabelRun]
	try, err := strconv.Atoi(a[LabelTry])
	if !okDAG || !okTask || !okRun || err != nil {
		return TryIdentity{}, false
	}
	if v, mapped := a[LabelMapIndex]; mapped {
		k, err := strconv.Atoi(v)
		if err != nil || k < 0 {
			return TryIdentity{}, false
		}
		taskID = task.InstanceID(taskID, k)
	}
	return TryIdentity{DAGID: dagID, RunID: runID, TaskID: taskID, Try: try, Instance: a[LabelInstance]}, true
}

// InstanceSelector returns the label selector matching every pod owned by
// the runner instance, for listing and watching them.
func InstanceSelector(instance string) string {
	return LabelInstance + "=" + LabelValue(instance)
}

// PodName returns the name of the pod that runs one try of a task instance.
// The name is deterministic (the same try always gets the same name, so a
// runner that restarts finds the pod it created), differs between tries and
// between the instances of a mapped task, and is a valid DNS-1123 label of
// at most 63 characters, hence also a valid pod name and hostname.
//
// taskID is the task instance's id, as in executor.Key: the task's id, or
// task.InstanceID(task, k) ("resize[3]") for a mapped task instance.
//
// It reads <dag>-<task>-<try>-<hash>, or <dag>-<task>-<k>-<try>-<hash> for
// map index k: the DAG and task ids lowercased, with every run of other
// characters than [a-z0-9] turned into "-" and shortened to fit (the longer
// of the two first, each kept to at least half of the room), then the map
// index and the try number, never shortened, then 12 base32 characters of a
// SHA-256 of the full (dagID, runID, taskID, try). The run id appears only in
// the hash. Two tries whose readable parts are cut to the same text still
// differ in the hash.
func PodName(dagID, runID, taskID string, try int) string {
	hash := shortHash("pod", dagID, runID, taskID, strconv.Itoa(try))
	base, k := task.ParseInstanceID(taskID)
	tryPart := dnsLabelChars(strconv.Itoa(try))
	suffix := "-" + tryPart + "-" + hash
	if k >= 0 {
		suffix = "-" + strconv.Itoa(k) + suffix
	}
	budget := maxNameLen - len(suffix)

	dagPart, taskPart := dnsLabelChars(dagID), dnsLabelChars(base)
	if len(dagPart)+1+len(taskPart) > budget {
		// Shorten the longer one, or both to half, so that both stay
		// recognisable in `kubectl get pods`.
		half := (budget - 1) / 2
		switch {
		case len(taskPart) <= half:
			dagPart = dagPart[:budget-1-len(taskPart)]
		case len(dagPart) <= half:
			taskPart = taskPart[:budget-1-len(dagPart)]
		default:
			dagPart, taskPart = dagPart[:half], taskPart[:budget-1-half]
		}
		dagPart, taskPart = strings.TrimRight(dagPart, "-"), strings.TrimRight(taskPart, "-")
	}
	readable := dagPart
	if readable != "" && taskPart != "" {
		readable += "-"
	}
	readable += taskPart
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
