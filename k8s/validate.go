package k8s

import (
	"errors"
	"reflect"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// BaseContainerName is the name of the container a worker pod runs the task
// in, as in Airflow's pod_template_file: the pod template must have a
// container of that name, and the builder sets its image, command and
// arguments.
const BaseContainerName = "base"

// ValidateWorkerTemplate checks a worker pod template (the platform team's
// pod_template_file) before any pod is built from it: it must have a
// container named BaseContainerName, and must pass the checks of
// ValidatePod that do not depend on what the builder fills in later (so the
// pod's name and the base container's image may be empty).
//
// The returned error joins one error per problem; each is a
// *field.Error naming the field path, e.g.
// `spec.containers: Required value: a container named "base" is required`.
func ValidateWorkerTemplate(pod *corev1.Pod) error {
	if pod == nil {
		return errors.New("pod template is nil")
	}
	errs := validatePod(pod, true)
	if !hasContainer(pod.Spec.Containers, BaseContainerName) {
		errs = append(errs, field.Required(field.NewPath("spec", "containers"),
			`a container named "`+BaseContainerName+`" is required: the task runs in it`))
	}
	return joinFieldErrors(errs)
}

// ValidatePod checks a pod that is about to be created for what the API
// server would reject, so that a mistake in a template, an override or a
// mutation hook is reported before launch, with its field path:
//
//   - metadata: name (or generateName) missing or not a DNS-1123 subdomain,
//     an invalid namespace, label or annotation (keys, values, total size),
//     finalizer or owner reference;
//   - no containers; a container (or init container) without a name, with
//     a name that is not a DNS-1123 label or is used twice, or without an
//     image;
//   - a volume without a name, with an invalid or duplicate name, or with
//     more than one source;
//   - a volumeMount or volumeDevice naming a volume that does not exist, a
//     volumeMount without mountPath, two mounts on one path;
//   - an env var without a name, with an invalid name, or with both value
//     and valueFrom; an invalid container port or port name;
//   - an invalid serviceAccountName, restartPolicy or nodeSelector.
//
// It is not the API server's full validation (that lives in
// k8s.io/kubernetes, which this module does not import); it covers what
// templates, overrides and merges typically get wrong. The returned error
// joins one *field.Error per problem (errors.As finds the first).
func ValidatePod(pod *corev1.Pod) error {
	if pod == nil {
		return errors.New("pod is nil")
	}
	return joinFieldErrors(validatePod(pod, false))
}

func joinFieldErrors(list field.ErrorList) error {
	if len(list) == 0 {
		return nil
	}
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func hasContainer(containers []corev1.Container, name string) bool {
	for _, c := range containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// validatePod collects the problems of pod. For a template, the name and the
// base container's image are not required: the builder sets them.
func validatePod(pod *corev1.Pod, template bool) field.ErrorList {
	var errs field.ErrorList

	meta := pod.ObjectMeta // shallow copy, only read
	if template && meta.Name == "" && meta.GenerateName == "" {
		meta.Name = "template" // any valid name: a template's name is replaced
	}
	// apimachinery walks labels and annotations in map order: sort its problems
	// so that the same pod always gets the same message.
	metaErrs := apivalidation.ValidateObjectMeta(&meta, meta.Namespace != "",
		apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	sort.SliceStable(metaErrs, func(i, j int) bool { return metaErrs[i].Error() < metaErrs[j].Error() })
	errs = append(errs, metaErrs...)

	spec := &pod.Spec
	specPath := field.NewPath("spec")

	volumes := make(map[string]bool, len(spec.Volumes))
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		p := specPath.Child("volumes").Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case volumes[v.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		default:
			for _, msg := range validation.IsDNS1123Label(v.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), v.Name, msg))
			}
		}
		volumes[v.Name] = true
		if n := countVolumeSources(&v.VolumeSource); n > 1 {
			errs = append(errs, field.Forbidden(p, "may not specify more than 1 volume type"))
		}
	}

	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(specPath.Child("containers"), ""))
	}
	names := make(map[string]bool, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		errs = append(errs, validateContainer(&spec.InitContainers[i],
			specPath.Child("initContainers").Index(i), names, volumes, template)...)
	}
	for i := range spec.Containers {
		errs = append(errs, validateContainer(&spec.Containers[i],
			specPath.Child("containers").Index(i), names, volumes, template)...)
	}

	if spec.ServiceAccountName != "" {
		for _, msg := range apivalidation.NameIsDNSSubdomain(spec.ServiceAccountName, false) {
			errs = append(errs, field.Invalid(specPath.Child("serviceAccountName"), spec.ServiceAccountName, msg))
		}
	}
	switch spec.RestartPolicy {
	case "", corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(specPath.Child("restartPolicy"), spec.RestartPolicy,
			[]corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, specPath.Child("nodeSelector"))...)
	return errs
}

// validateContainer checks one container; names collects the container
// names seen so far across initContainers and containers.
func validateContainer(c *corev1.Container, p *field.Path, names, volumes map[string]bool, template bool) field.ErrorList {
	var errs field.ErrorList
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(p.Child("name"), ""))
	case names[c.Name]:
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	default:
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
		}
	}
	names[c.Name] = true

	if c.Image == "" && !(template && c.Name == BaseContainerName) {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}

	mountPaths := make(map[string]bool, len(c.VolumeMounts))
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else if !volumes[m.Name] {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		case mountPaths[m.MountPath]:
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths[m.MountPath] = true
	}
	for i, d := range c.VolumeDevices {
		if !volumes[d.Name] {
			errs = append(errs, field.NotFound(p.Child("volumeDevices").Index(i).Child("name"), d.Name))
		}
	}

	for i, e := range c.Env {
		ep := p.Child("env").Index(i)
		for _, msg := range validation.IsRelaxedEnvVarName(e.Name) {
			errs = append(errs, field.Invalid(ep.Child("name"), e.Name, msg))
		}
		if e.Value != "" && e.ValueFrom != nil {
			errs = append(errs, field.Invalid(ep.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
		}
	}

	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
			errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, msg))
		}
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
			}
		}
	}
	return errs
}

// countVolumeSources counts the sources set in a VolumeSource, a union of
// pointer fields of which at most one may be set.
func countVolumeSources(src *corev1.VolumeSource) int {
	v := reflect.ValueOf(src).Elem()
	n := 0
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			n++
		}
	}
	return n
}
