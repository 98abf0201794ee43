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
	// declares mergeable (containers, initContainers, volumes, and per
	// container env, ports, volumeMounts, volumeDevices, resizePolicy) are
	// merged element by element on their merge key (name, containerPort,
	// mountPath, devicePath); maps (labels, annotations, nodeSelector,
	// resources) are merged key by key; everything else in the override,
	// including atomic lists such as args, command, envFrom and tolerations,
	// replaces the base value. It is the default (the zero MergeMode).
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
// patch (overridePatch, keepBaseOrder), to base.
//
// The override is an object, not a patch. Diffing base against it with
// CreateTwoWayMergePatch would be wrong: that patch turns base into the
// override, deleting everything the override leaves out. Instead the override
// itself is applied as a patch, after the clean-up overridePatch describes.
func strategicMergePod(base, override *corev1.Pod) (*corev1.Pod, error) {
	meta, err := podPatchMeta()
	if err != nil {
		return nil, err
	}
	original, err := runtime.DefaultUnstructuredConverter.ToUnstructured(base)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	patch, err := overridePatch(override, base.Spec.Volumes)
	if err != nil {
		return nil, err
	}
	keepBaseOrder(patch, original, meta)
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

// overridePatch turns an override object into a strategic merge patch.
//
//   - Fields the override leaves at their zero value must not clobber the
//     base. Most Pod fields are omitempty (or pointers), so they are absent
//     from the converted map, but required fields and non-pointer structs are
//     not: an override without containers still converts to "containers":
//     null, and in a strategic merge patch null means "delete this field". Every null is removed, so an override
//     can add and replace but never delete.
//   - Map keys are user data (labels, annotations, CSI volumeAttributes) and
//     could spell a patch directive ("$patch": "replace" would wipe the
//     base's map). A key starting with "$" is rejected.
//   - Volumes are declared patchStrategy "merge,retainKeys": a volume is a
//     union of sources, and replacing a volume's source (configMap by
//     emptyDir, say) must drop the base's source, or the merged volume would
//     have two. A patch computed by Kubernetes carries a $retainKeys list for
//     that; it is added here for each override volume that sets a source and
//     replaces a base volume of the same name. (A directive on a volume that
//     is only appended would be copied into the result as is.)
func overridePatch(override *corev1.Pod, baseVolumes []corev1.Volume) (map[string]any, error) {
	patch, err := runtime.DefaultUnstructuredConverter.ToUnstructured(override)
	if err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	if err := stripNulls(patch, ""); err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	if spec, ok := patch["spec"].(map[string]any); ok {
		if volumes, ok := spec["volumes"].([]any); ok {
			for _, v := range volumes {
				vol, ok := v.(map[string]any)
				if !ok || len(vol) < 2 { // a name alone sets no source
					continue
				}
				name, _ := vol["name"].(string)
				if !slices.ContainsFunc(baseVolumes, func(b corev1.Volume) bool { return b.Name == name }) {
					continue
				}
				keys := make([]any, 0, len(vol))
				for k := range vol {
					keys = append(keys, k)
				}
				slices.SortFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
				vol["$retainKeys"] = keys
			}
		}
	}
	return patch, nil
}

// keepBaseOrder adds $setElementOrder directives to patch so that merged
// lists keep the base's order, with the override's new elements appended.
//
// Without them, strategicpatch puts the elements the patch names first, in
// the patch's order, and the base's other elements after them: an override
// that adds one env var or one sidecar would move it before the base's, and
// the "base" container would no longer be the first container. Env var
// order matters ($(VAR) only expands variables defined earlier), and so
// does the first container (kubectl logs and exec default to it).
//
// The directive is only added where it is well defined: lists declared
// patchStrategy "merge" whose elements all carry their merge key (or lists
// of scalars). Anything else is left for strategicpatch to judge.
func keepBaseOrder(patch, original map[string]any, schema strategicpatch.LookupPatchMeta) {
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
			keepBaseOrder(pv, ov, sub)
		case []any:
			ol, _ := original[k].([]any)
			if len(ol) == 0 || len(pv) == 0 {
				continue
			}
			sub, pm, err := schema.LookupPatchMetadataForSlice(k)
			if err != nil || !slices.Contains(pm.GetPatchStrategies(), "merge") {
				continue
			}
			order, ok := mergedOrder(ol, pv, pm.GetPatchMergeKey())
			if !ok {
				continue
			}
			mk := pm.GetPatchMergeKey()
			if mk != "" {
				for _, p := range pv {
					elem := p.(map[string]any)
					i := slices.IndexFunc(ol, func(o any) bool { return o.(map[string]any)[mk] == elem[mk] })
					if i >= 0 {
						keepBaseOrder(elem, ol[i].(map[string]any), sub)
					}
				}
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
// false if an element lacks its merge key or a key is not a plain scalar.
func mergedOrder(original, patch []any, mergeKey string) (order []any, ok bool) {
	seen := make(map[any]bool, len(original)+len(patch))
	for _, list := range [][]any{original, patch} {
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
