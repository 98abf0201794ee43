package k8s

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// MergeMode selects how MergePod combines a base pod with an override.
type MergeMode int

const (
	// StrategicMerge merges the override into the base the way
	// `kubectl patch --type strategic` applies a patch: lists that Kubernetes
	// declares mergeable (containers, initContainers, volumes,
	// imagePullSecrets, hostAliases, topologySpreadConstraints,
	// resourceClaims, and per container env, ports, volumeMounts,
	// volumeDevices) are merged element by element on their merge key (name,
	// containerPort, mountPath, devicePath, ...), keeping the base's order
	// and appending new elements; finalizers are merged as a set; maps
	// (labels, annotations, nodeSelector, resource limits and requests) are
	// merged key by key; everything else in the override, including atomic
	// lists such as args, command, envFrom and tolerations, replaces the base
	// value. A field the override leaves at its zero value (nil, "", false,
	// 0 for a non-pointer field) does not count as set; an explicit pointer
	// to a zero value does. The override can add and replace but never
	// delete. It is the default (the zero MergeMode).
	StrategicMerge MergeMode = iota

	// AirflowMerge reproduces Airflow's PodGenerator.reconcile_pods, for
	// teams moving pod_override settings over from Airflow: containers are
	// paired by position, not by name; volumes, initContainers and per
	// container volumeMounts, env, envFrom, ports and volumeDevices are
	// appended, base first, never merged by name; labels and annotations are
	// merged key by key; every other field of the pod, its metadata, its spec
	// and each container is replaced by the override's value when that value
	// is not empty. As in Python, an override value of false, 0 or "" counts
	// as empty and does not replace the base value, and a nested object (a
	// securityContext, resources, affinity) replaces the base's object whole.
	AirflowMerge
)

// String returns "strategic" or "airflow".
func (m MergeMode) String() string {
	switch m {
	case StrategicMerge:
		return "strategic"
	case AirflowMerge:
		return "airflow"
	default:
		return fmt.Sprintf("MergeMode(%d)", int(m))
	}
}

// MergePod returns a new pod made of base with override merged on top of it,
// following mode (see StrategicMerge and AirflowMerge). The override wins
// wherever both set a value.
//
// A nil override returns a copy of base; a nil base returns a copy of
// override; if both are nil the result is an empty pod. MergePod never
// modifies base or override, and the result shares no memory with them.
func MergePod(base, override *corev1.Pod, mode MergeMode) (*corev1.Pod, error) {
	if mode != StrategicMerge && mode != AirflowMerge {
		return nil, fmt.Errorf("merge pod: unknown merge mode %v", mode)
	}
	switch {
	case base == nil && override == nil:
		return &corev1.Pod{}, nil
	case override == nil:
		return base.DeepCopy(), nil
	case base == nil:
		return override.DeepCopy(), nil
	}
	if mode == AirflowMerge {
		return airflowReconcilePods(base, override), nil
	}
	pod, err := strategicMergePod(base, override)
	if err != nil {
		return nil, fmt.Errorf("merge pod (strategic): %w", err)
	}
	return pod, nil
}

// podPatchMeta is the strategic-merge schema of a Pod (patchStrategy and
// patchMergeKey struct tags), built once.
var podPatchMeta = sync.OnceValues(func() (strategicpatch.LookupPatchMeta, error) {
	return strategicpatch.NewPatchMetaFromStruct(&corev1.Pod{})
})

// strategicMergePod applies the override, turned into a strategic merge
// patch (overridePatch, addDirectives), to base.
//
// The override is an object, not a patch. Diffing base against it with
// CreateTwoWayMergePatch would be wrong: that patch turns base into the
// override, deleting everything the override leaves out. Instead the override
// itself is applied as a patch, after the clean-up overridePatch describes,
// with the directives a patch computed by Kubernetes would carry.
func strategicMergePod(base, override *corev1.Pod) (*corev1.Pod, error) {
	meta, err := podPatchMeta()
	if err != nil {
		return nil, err
	}
	original, err := runtime.DefaultUnstructuredConverter.ToUnstructured(base)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	patch, err := overridePatch(override)
	if err != nil {
		return nil, err
	}
	addDirectives(patch, original, meta)
	merged, err := strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta(original, patch, meta)
	if err != nil {
		return nil, err
	}
	out := &corev1.Pod{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(merged, out); err != nil {
		return nil, fmt.Errorf("merged pod: %w", err)
	}
	return out, nil
}

// overridePatch turns an override object into the body of a strategic merge
// patch.
//
//   - Fields the override leaves at their zero value must not clobber the
//     base. Most Pod fields are omitempty (or pointers), so they are absent
//     from the converted map, but required fields are not: an override
//     without containers still converts to "containers": null, and in a
//     strategic merge patch null means "delete this field". Every null is
//     removed, so an override can add and replace but never delete.
//   - Map keys are user data (labels, annotations, CSI volumeAttributes) and
//     could spell a patch directive ("$patch": "replace" would wipe the
//     base's map). A key starting with "$" is rejected.
func overridePatch(override *corev1.Pod) (map[string]any, error) {
	patch, err := runtime.DefaultUnstructuredConverter.ToUnstructured(override)
	if err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	if err := stripNulls(patch, ""); err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	return patch, nil
}

// addDirectives walks patch alongside original and adds the directives that
// `kubectl apply` would compute, where a list element of the patch meets an
// element of the base:
//
//   - $setElementOrder/<list>, so that merged lists keep the base's order
//     with the override's new elements appended. Without it strategicpatch
//     puts the elements the patch names first, in the patch's order, and the
//     base's others after them: an override that adds an env var or a
//     sidecar would move it before the base's, and the "base" container would
//     no longer come first. Env var order matters ($(VAR) only expands
//     variables defined earlier), and so does the first container (kubectl
//     logs and exec default to it). Added only for lists declared
//     patchStrategy "merge" whose elements all carry their merge key once.
//   - $retainKeys, on elements of lists declared "merge,retainKeys" (volumes
//     and resourceClaims, each a union of sources): an override volume that
//     sets a source replaces the base volume's source instead of adding a
//     second one (configMap plus emptyDir, which the API server rejects). A
//     volume given by name alone is left alone. Elements that only add to a
//     list get no directive: strategicpatch would copy it into the result.
func addDirectives(patch, original map[string]any, schema strategicpatch.LookupPatchMeta) {
	for k, pv := range patch {
		if strings.HasPrefix(k, "$") {
			continue
		}
		switch pv := pv.(type) {
		case map[string]any:
			ov, _ := original[k].(map[string]any)
			if ov == nil {
				continue
			}
			sub, _, err := schema.LookupPatchMetadataForStruct(k)
			if err != nil {
				continue
			}
			addDirectives(pv, ov, sub)
		case []any:
			ol, _ := original[k].([]any)
			if len(ol) == 0 || len(pv) == 0 {
				continue
			}
			sub, pm, err := schema.LookupPatchMetadataForSlice(k)
			if err != nil || !slices.Contains(pm.GetPatchStrategies(), "merge") {
				continue
			}
			mk := pm.GetPatchMergeKey()
			retainKeys := slices.Contains(pm.GetPatchStrategies(), "retainKeys")
			if mk != "" {
				for _, p := range pv {
					elem, ok := p.(map[string]any)
					if !ok {
						continue
					}
					key, ok := elem[mk]
					if !ok {
						continue
					}
					i := slices.IndexFunc(ol, func(o any) bool {
						om, ok := o.(map[string]any)
						return ok && om[mk] == key
					})
					if i < 0 {
						continue
					}
					addDirectives(elem, ol[i].(map[string]any), sub)
					if retainKeys {
						keys := make([]any, 0, len(elem))
						for k := range elem {
							if !strings.HasPrefix(k, "$") {
								keys = append(keys, k)
							}
						}
						if len(keys) > 1 { // more than the merge key
							slices.SortFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
							elem["$retainKeys"] = keys
						}
					}
				}
			}
			order, ok := mergedOrder(ol, pv, mk)
			if !ok {
				continue
			}
			// The patch list must follow the directive's order too.
			pos := make(map[any]int, len(order))
			for i, o := range order {
				pos[orderKey(o, mk)] = i
			}
			slices.SortStableFunc(pv, func(a, b any) int { return pos[orderKey(a, mk)] - pos[orderKey(b, mk)] })
			patch["$setElementOrder/"+k] = order
		}
	}
}

// mergedOrder returns the $setElementOrder list for merging patch into
// original: original's keys in order, then patch's new keys in order. ok is
// false if an element lacks its merge key, a key is not a plain scalar, or
// the patch has a key twice (strategicpatch rejects a directive that lists
// fewer elements than the patch; without one it merges the duplicates).
func mergedOrder(original, patch []any, mergeKey string) (order []any, ok bool) {
	seen := make(map[any]bool, len(original)+len(patch))
	inPatch := make(map[any]bool, len(patch))
	for li, list := range [][]any{original, patch} {
		for _, e := range list {
			var key any
			if mergeKey == "" {
				key = e
			} else {
				m, isMap := e.(map[string]any)
				if !isMap {
					return nil, false
				}
				if key, ok = m[mergeKey]; !ok {
					return nil, false
				}
			}
			switch key.(type) {
			case string, int64, bool, float64:
			default:
				return nil, false
			}
			if li == 1 {
				if inPatch[key] {
					return nil, false
				}
				inPatch[key] = true
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			if mergeKey == "" {
				order = append(order, key)
			} else {
				order = append(order, map[string]any{mergeKey: key})
			}
		}
	}
	return order, true
}

func orderKey(e any, mergeKey string) any {
	if mergeKey == "" {
		return e
	}
	return e.(map[string]any)[mergeKey]
}

// stripNulls deletes null values from m recursively and rejects keys that
// would be read as strategic merge patch directives.
func stripNulls(m map[string]any, path string) error {
	for k, v := range m {
		p := k
		if path != "" {
			p = path + "." + k
		}
		if strings.HasPrefix(k, "$") {
			return fmt.Errorf("%s: key %q would be read as a strategic merge patch directive", path, k)
		}
		if v == nil {
			delete(m, k)
			continue
		}
		if err := stripNullsValue(v, p); err != nil {
			return err
		}
	}
	return nil
}

func stripNullsValue(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		return stripNulls(v, path)
	case []any:
		for i, e := range v {
			if err := stripNullsValue(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
