package k8s

import (
	"maps"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file ports PodGenerator.reconcile_pods and its helpers from
// airflow/providers/cncf/kubernetes/pod_generator.py of the
// apache-airflow-providers-cncf-kubernetes package, as it reads in the
// apache/airflow repository at commit 0b3d3e97 (providers/cncf/kubernetes,
// whose provider.yaml lists 10.21.0 as the latest release). Each Go function
// names the Python function it follows.
//
// Python's truthiness is the crux. The Kubernetes Python client models every
// field as an attribute that is None unless set, and merge_objects lets the
// base value through wherever the override's attribute is falsy: None,
// False, 0, "", an empty list or an empty dict. A model object (V1Probe,
// V1SecurityContext, ...) is always truthy, even when all its attributes are
// None. In Go that becomes:
//
//   - nil pointer, nil or empty slice or map: falsy (None or empty);
//   - pointer to a struct: truthy (a model object), even if the struct is
//     empty;
//   - pointer to a scalar (*bool, *int64, *string): the scalar's truthiness,
//     so an override of false or 0 does not replace the base value;
//   - non-pointer scalar: falsy when zero;
//   - non-pointer struct (resources, creationTimestamp): falsy when zero,
//     because Go cannot tell an unset one from an empty one.

// airflowReconcilePods follows PodGenerator.reconcile_pods. base and
// override must not be nil.
func airflowReconcilePods(base, override *corev1.Pod) *corev1.Pod {
	// Work on private copies: values are moved from b into c freely below.
	b, c := base.DeepCopy(), override.DeepCopy()
	c.Spec = airflowReconcileSpecs(&b.Spec, &c.Spec)
	c.ObjectMeta = airflowReconcileMetadata(&b.ObjectMeta, &c.ObjectMeta)
	airflowMergeObjects(reflect.ValueOf(b).Elem(), reflect.ValueOf(c).Elem())
	return c
}

// airflowReconcileMetadata follows PodGenerator.reconcile_metadata.
//
// Airflow's reconcile_metadata also calls extend_object_field for
// managed_fields, finalizers and owner_references, but discards the copies
// that function returns, so those lists are not appended: like any other
// field, the override's list replaces the base's when it is not empty. This
// port keeps that behaviour.
func airflowReconcileMetadata(base, client *metav1.ObjectMeta) metav1.ObjectMeta {
	baseSet, clientSet := !reflect.ValueOf(base).Elem().IsZero(), !reflect.ValueOf(client).Elem().IsZero()
	switch {
	case baseSet && !clientSet:
		return *base
	case !baseSet && clientSet:
		return *client
	case !baseSet && !clientSet:
		return metav1.ObjectMeta{}
	}
	client.Labels = airflowMergeDicts(base.Labels, client.Labels)
	client.Annotations = airflowMergeDicts(base.Annotations, client.Annotations)
	airflowMergeObjects(reflect.ValueOf(base).Elem(), reflect.ValueOf(client).Elem())
	return *client
}

// airflowReconcileSpecs follows PodGenerator.reconcile_specs.
func airflowReconcileSpecs(base, client *corev1.PodSpec) corev1.PodSpec {
	baseSet, clientSet := !reflect.ValueOf(base).Elem().IsZero(), !reflect.ValueOf(client).Elem().IsZero()
	switch {
	case baseSet && !clientSet:
		return *base
	case !baseSet && clientSet:
		return *client
	case !baseSet && !clientSet:
		return corev1.PodSpec{}
	}
	client.Containers = airflowReconcileContainers(base.Containers, client.Containers)
	client.InitContainers = airflowExtend(base.InitContainers, client.InitContainers)
	client.Volumes = airflowExtend(base.Volumes, client.Volumes)
	airflowMergeObjects(reflect.ValueOf(base).Elem(), reflect.ValueOf(client).Elem())
	return *client
}

// airflowReconcileContainers follows PodGenerator.reconcile_containers: the
// i-th override container is merged into the i-th base container, whatever
// their names; the longer list's extra containers are kept as they are.
func airflowReconcileContainers(base, client []corev1.Container) []corev1.Container {
	if len(base) == 0 {
		return client
	}
	if len(client) == 0 {
		return base
	}
	out := make([]corev1.Container, 0, max(len(base), len(client)))
	n := min(len(base), len(client))
	for i := range n {
		bc, cc := &base[i], &client[i]
		cc.VolumeMounts = airflowExtend(bc.VolumeMounts, cc.VolumeMounts)
		cc.Env = airflowExtend(bc.Env, cc.Env)
		cc.EnvFrom = airflowExtend(bc.EnvFrom, cc.EnvFrom)
		cc.Ports = airflowExtend(bc.Ports, cc.Ports)
		cc.VolumeDevices = airflowExtend(bc.VolumeDevices, cc.VolumeDevices)
		airflowMergeObjects(reflect.ValueOf(bc).Elem(), reflect.ValueOf(cc).Elem())
		out = append(out, *cc)
	}
	out = append(out, base[n:]...)
	out = append(out, client[n:]...)
	return out
}

// airflowExtend follows extend_object_field: base's items, then client's.
func airflowExtend[T any](base, client []T) []T {
	if len(base) == 0 {
		return client
	}
	if len(client) == 0 {
		return base
	}
	return slices.Concat(base, client)
}

// airflowMergeDicts follows merge_objects for two dicts: base updated with
// client, so the client's value wins for a key in both (even "").
func airflowMergeDicts(base, client map[string]string) map[string]string {
	if len(base) == 0 {
		return client
	}
	if len(client) == 0 {
		return base
	}
	out := maps.Clone(base)
	maps.Copy(out, client)
	return out
}

// airflowMergeObjects follows merge_objects for two model objects: every
// field of client that is falsy takes base's value, when base has one.
// Embedded structs (TypeMeta) are flattened, as the Python models have
// api_version and kind as plain attributes.
func airflowMergeObjects(base, client reflect.Value) {
	for i := range client.NumField() {
		f := client.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		bv, cv := base.Field(i), client.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			airflowMergeObjects(bv, cv)
			continue
		}
		if !pythonTruthy(cv) && !pythonNone(bv) {
			cv.Set(bv)
		}
	}
}

// pythonTruthy reports whether the Python attribute v stands for would be
// true in a boolean context (see the mapping at the top of this file).
func pythonTruthy(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return false
		}
		if v.Elem().Kind() == reflect.Struct {
			return true
		}
		return pythonTruthy(v.Elem())
	case reflect.Interface:
		return !v.IsNil()
	case reflect.Slice, reflect.Map:
		return v.Len() > 0
	default:
		return !v.IsZero()
	}
}

// pythonNone reports whether the attribute v stands for would be None.
func pythonNone(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return v.IsNil()
	case reflect.Struct:
		return v.IsZero()
	default:
		return false
	}
}
