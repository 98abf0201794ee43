package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
)

// PodSpec describes a pod of any image (Airflow's KubernetesPodOperator). The
// pod is built from three layers, each winning over the one before: the
// template file, the full pod (Pod), then the fields of this struct. String
// fields marked "template" are Go text/templates over task.TemplateData
// ({{ .DS }}, {{ .RunID }}, {{ .Params.x }}).
//
// A pod task mapped over a list (task.MapOver, task.MapItems, task.MapParam)
// runs one pod per element, each a task instance of its own ("resize[3]")
// with its own tries and result; its templates also see the element as
// {{ .Item }} (and its fields, {{ .Item.name }}) and its index as
// {{ .MapIndex }}. Under the Kubernetes executor and the local one alike,
// each instance's pod carries the map index in its name and in the
// trellis.dev/map-index label (k8s.LabelMapIndex), and downstream tasks read
// the instances' results with task.MappedOutput.
//
// The task runs in the container named "base" (created when the template
// and Pod have none). The pod is created by the runner directly, under
// either executor: one pod per try, never a launcher pod plus the pod.
type PodSpec struct {
	// Image of the base container (template). Required unless the template
	// or Pod gives one.
	Image string
	// Command and Args of the base container (each element a template).
	Command, Args []string
	// Env adds or replaces env vars of the base container; Value is a
	// template; ValueFrom (secrets, config maps, fields) is passed as is.
	Env []corev1.EnvVar
	// EnvFrom adds sources of env vars to the base container.
	EnvFrom []corev1.EnvFromSource
	// Volumes and VolumeMounts add or replace (by name, by mount path).
	Volumes      []corev1.Volume
	VolumeMounts []corev1.VolumeMount
	// Resources of the base container, when any request or limit is set.
	Resources corev1.ResourceRequirements
	// NodeSelector entries are added (values are templates).
	NodeSelector map[string]string
	Affinity     *corev1.Affinity
	Tolerations  []corev1.Toleration
	// ServiceAccountName (template).
	ServiceAccountName string
	// Labels and Annotations are added to the pod (values are templates).
	Labels, Annotations map[string]string
	ImagePullPolicy     corev1.PullPolicy
	ImagePullSecrets    []corev1.LocalObjectReference
	// SecurityContext of the pod; ContainerSecurityContext of the base container.
	SecurityContext          *corev1.PodSecurityContext
	ContainerSecurityContext *corev1.SecurityContext
	// Namespace (template); empty: the template's, else the runner's.
	Namespace string
	// StartupTimeout is how long the pod may stay pending before the try
	// fails (default: the runner's).
	StartupTimeout time.Duration
	// Pod is a full pod (Airflow's full_pod_spec), merged over the template.
	Pod *corev1.Pod
	// PodTemplateFile is a pod template file (YAML or JSON), the lowest layer.
	PodTemplateFile string
	// ResultPath is where the base container writes its result, a JSON value
	// (Airflow's do_xcom_push, /airflow/xcom/return.json): the file is the
	// container's termination message, so it holds at most 4096 bytes, and
	// the value becomes the task's typed result. Empty: the task has no
	// result.
	ResultPath string
	// OnFinish is what happens to the pod after its try ends (default: the
	// runner's cleanup policy).
	OnFinish k8s.OnFinish
	// SkipOnExitCodes are exit codes (1-255) of the base container that
	// skip the task instead of failing it (Airflow's skip_on_exit_code): no
	// retry, and downstream tasks follow their trigger rules as for any
	// skip. Empty: every non-zero exit code fails the try.
	SkipOnExitCodes []int
}

// PodTask runs one pod per try; its result (ResultPath) has type T. It
// implements k8s.PodTask and task.Ref[T].
type PodTask[T any] struct {
	task.Def
	task.Returns[T]
	spec PodSpec

	image, namespace, sa *template.Template
	command, args        []*template.Template
	env                  []*template.Template // per Env element; nil for ValueFrom
	labels, annotations  map[string]*template.Template
	nodeSelector         map[string]*template.Template

	loadOnce sync.Once
	tmpl     *corev1.Pod
	tmplErr  error
}

var (
	_ task.Ref[int] = (*PodTask[int])(nil)
	_ k8s.PodTask   = (*PodTask[int])(nil)
)

// Pod returns a pod task whose result is any JSON value.
func Pod(id string, spec PodSpec, opts ...task.Option) *PodTask[json.RawMessage] {
	return PodOf[json.RawMessage](id, spec, opts...)
}

// PodOf returns a pod task whose result, read from ResultPath, has type T.
// Templates that do not parse and invalid fields are reported by the DAG's
// Validate.
func PodOf[T any](id string, spec PodSpec, opts ...task.Option) *PodTask[T] {
	p := &PodTask[T]{Def: task.NewDef(id, task.KindPod, opts...), spec: spec}
	var errs []error
	parse := func(name, text string) *template.Template {
		t, err := task.ParseTemplate(name, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("pod: %s template: %w", name, err))
		}
		return t
	}
	p.image = parse("image", spec.Image)
	p.namespace = parse("namespace", spec.Namespace)
	p.sa = parse("serviceAccountName", spec.ServiceAccountName)
	for i, c := range spec.Command {
		p.command = append(p.command, parse(fmt.Sprintf("command[%d]", i), c))
	}
	for i, a := range spec.Args {
		p.args = append(p.args, parse(fmt.Sprintf("args[%d]", i), a))
	}
	for i, e := range spec.Env {
		if e.ValueFrom != nil {
			if e.Value != "" {
				errs = append(errs, fmt.Errorf("pod: env[%d] %s: both value and valueFrom", i, e.Name))
			}
			p.env = append(p.env, nil)
			continue
		}
		p.env = append(p.env, parse(fmt.Sprintf("env[%d] %s", i, e.Name), e.Value))
	}
	parseMap := func(what string, m map[string]string) map[string]*template.Template {
		out := map[string]*template.Template{}
		for k, v := range m {
			out[k] = parse(what+" "+k, v)
		}
		return out
	}
	p.labels = parseMap("label", spec.Labels)
	p.annotations = parseMap("annotation", spec.Annotations)
	p.nodeSelector = parseMap("nodeSelector", spec.NodeSelector)
	if spec.ResultPath != "" && !path.IsAbs(spec.ResultPath) {
		errs = append(errs, fmt.Errorf("pod: result path %q is not absolute", spec.ResultPath))
	}
	if !spec.OnFinish.Valid() {
		errs = append(errs, fmt.Errorf("pod: on-finish %q is not delete, delete-on-success or keep", spec.OnFinish))
	}
	for _, c := range spec.SkipOnExitCodes {
		if !k8s.ValidSkipExitCode(c) {
			errs = append(errs, fmt.Errorf("pod: skip-on-exit-code %d: want an exit code from 1 to 255 (0 succeeds)", c))
		}
	}
	if spec.StartupTimeout < 0 {
		errs = append(errs, fmt.Errorf("pod: startup timeout %s is negative", spec.StartupTimeout))
	}
	if spec.Pod != nil && spec.Pod.Name != "" {
		errs = append(errs, fmt.Errorf("pod: the full pod sets metadata.name %q; pod names are generated per try", spec.Pod.Name))
	}
	if spec.Image == "" && spec.Pod == nil && spec.PodTemplateFile == "" {
		errs = append(errs, errors.New("pod: no image (set Image, or give a Pod or PodTemplateFile with one)"))
	}
	for _, e := range errs {
		task.Invalid(e)(&p.Def)
	}
	return p
}

// Spec returns the task's spec.
func (p *PodTask[T]) Spec() PodSpec { return p.spec }

// Execute refuses to run the pod in-process: a pod task's tries are pods the
// runner creates.
func (p *PodTask[T]) Execute(ctx context.Context, r *task.Run) ([]byte, error) {
	return nil, fmt.Errorf("task %q runs a pod; run it with a runner that reaches a cluster (the pod is created under either executor)", p.ID())
}

// DecodeResult checks that raw, the pushed result, decodes as T and returns
// it unchanged.
func (p *PodTask[T]) DecodeResult(raw []byte) ([]byte, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("result %s is not a JSON %T: %w", preview(raw), v, err)
	}
	return raw, nil
}

func preview(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q…", b[:80])
	}
	return fmt.Sprintf("%q", b)
}

func (p *PodTask[T]) template() (*corev1.Pod, error) {
	p.loadOnce.Do(func() {
		if p.spec.PodTemplateFile == "" {
			return
		}
		p.tmpl, p.tmplErr = k8s.LoadPodTemplate(p.spec.PodTemplateFile)
	})
	return p.tmpl, p.tmplErr
}

// Pod builds the pod of one try: the template file, the full pod, then the
// operator's fields, with templates rendered over r. The runner then sets
// the name, identity labels and namespace default, and applies its mutation
// hooks.
func (p *PodTask[T]) Pod(ctx context.Context, r *task.Run) (*corev1.Pod, error) {
	tmpl, err := p.template()
	if err != nil {
		return nil, err
	}
	pod, err := k8s.MergePod(tmpl, p.spec.Pod, k8s.StrategicMerge)
	if err != nil {
		return nil, fmt.Errorf("pod: full pod over template: %w", err)
	}
	render := newPodRenderer(p, r).render
	renderAll := func(ts []*template.Template) ([]string, error) {
		out := make([]string, len(ts))
		for i, t := range ts {
			s, err := render(t)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	renderMap := func(dst map[string]string, ts map[string]*template.Template) (map[string]string, error) {
		if len(ts) == 0 {
			return dst, nil
		}
		if dst == nil {
			dst = map[string]string{}
		}
		keys := make([]string, 0, len(ts))
		for k := range ts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, err := render(ts[k])
			if err != nil {
				return nil, err
			}
			dst[k] = s
		}
		return dst, nil
	}

	spec := &pod.Spec
	ci := -1
	for i := range spec.Containers {
		if spec.Containers[i].Name == k8s.BaseContainerName {
			ci = i
			break
		}
	}
	if ci < 0 {
		spec.Containers = append([]corev1.Container{{Name: k8s.BaseContainerName}}, spec.Containers...)
		ci = 0
	}
	c := &spec.Containers[ci]
	if s, err := render(p.image); err != nil {
		return nil, err
	} else if s != "" {
		c.Image = s
	}
	if len(p.command) > 0 {
		if c.Command, err = renderAll(p.command); err != nil {
			return nil, err
		}
	}
	if len(p.args) > 0 {
		if c.Args, err = renderAll(p.args); err != nil {
			return nil, err
		}
	}
	for i, e := range p.spec.Env {
		e := *e.DeepCopy()
		if p.env[i] != nil {
			if e.Value, err = render(p.env[i]); err != nil {
				return nil, err
			}
		}
		if k := indexEnv(c.Env, e.Name); k >= 0 {
			c.Env[k] = e
		} else {
			c.Env = append(c.Env, e)
		}
	}
	for _, e := range p.spec.EnvFrom {
		c.EnvFrom = append(c.EnvFrom, *e.DeepCopy())
	}
	for _, v := range p.spec.Volumes {
		replaced := false
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == v.Name {
				spec.Volumes[i], replaced = *v.DeepCopy(), true
			}
		}
		if !replaced {
			spec.Volumes = append(spec.Volumes, *v.DeepCopy())
		}
	}
	for _, m := range p.spec.VolumeMounts {
		replaced := false
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].MountPath == m.MountPath {
				c.VolumeMounts[i], replaced = *m.DeepCopy(), true
			}
		}
		if !replaced {
			c.VolumeMounts = append(c.VolumeMounts, *m.DeepCopy())
		}
	}
	if len(p.spec.Resources.Limits) > 0 || len(p.spec.Resources.Requests) > 0 || len(p.spec.Resources.Claims) > 0 {
		c.Resources = *p.spec.Resources.DeepCopy()
	}
	if p.spec.ImagePullPolicy != "" {
		c.ImagePullPolicy = p.spec.ImagePullPolicy
	}
	if p.spec.ContainerSecurityContext != nil {
		c.SecurityContext = p.spec.ContainerSecurityContext.DeepCopy()
	}
	if p.spec.ResultPath != "" {
		c.TerminationMessagePath = p.spec.ResultPath
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	if spec.NodeSelector, err = renderMap(spec.NodeSelector, p.nodeSelector); err != nil {
		return nil, err
	}
	if p.spec.Affinity != nil {
		spec.Affinity = p.spec.Affinity.DeepCopy()
	}
	if len(p.spec.Tolerations) > 0 {
		spec.Tolerations = nil
		for _, t := range p.spec.Tolerations {
			spec.Tolerations = append(spec.Tolerations, *t.DeepCopy())
		}
	}
	if s, err := render(p.sa); err != nil {
		return nil, err
	} else if s != "" {
		spec.ServiceAccountName = s
	}
	if len(p.spec.ImagePullSecrets) > 0 {
		spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), p.spec.ImagePullSecrets...)
	}
	if p.spec.SecurityContext != nil {
		spec.SecurityContext = p.spec.SecurityContext.DeepCopy()
	}
	if s, err := render(p.namespace); err != nil {
		return nil, err
	} else if s != "" {
		pod.Namespace = s
	}
	if pod.Labels, err = renderMap(pod.Labels, p.labels); err != nil {
		return nil, err
	}
	if pod.Annotations, err = renderMap(pod.Annotations, p.annotations); err != nil {
		return nil, err
	}
	setAnnotation := func(k, v string) {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[k] = v
	}
	if p.spec.OnFinish != k8s.OnFinishDefault {
		setAnnotation(k8s.AnnotationOnFinish, string(p.spec.OnFinish))
	}
	if p.spec.StartupTimeout > 0 {
		setAnnotation(k8s.AnnotationStartupTimeout, p.spec.StartupTimeout.String())
	}
	if p.spec.ResultPath != "" {
		setAnnotation(k8s.AnnotationResult, "termination-message")
	}
	if len(p.spec.SkipOnExitCodes) > 0 {
		setAnnotation(k8s.AnnotationSkipExitCodes, k8s.FormatExitCodes(p.spec.SkipOnExitCodes))
	}
	if pod.APIVersion == "" {
		pod.APIVersion, pod.Kind = "v1", "Pod"
	}
	return pod, nil
}

// podRenderer renders the templates of one try's pod. The template data
// (dates, params, conf and, for a mapped task instance, its decoded element)
// is made once for all of them instead of once per template, and a template
// without actions is its text: a mapped task's pods are built one after
// another as the executor starts its instances. Anything unusual (an
// element that cannot be read or decoded) goes through task.Run.Render,
// whose errors are the reference.
type podRenderer struct {
	r      *task.Run
	mapped bool
	data   *task.TemplateData
	slow   bool // render every template with r.Render
}

func newPodRenderer(t task.Task, r *task.Run) *podRenderer {
	_, mapped := task.MappingOf(t)
	return &podRenderer{r: r, mapped: mapped}
}

func (p *podRenderer) render(t *template.Template) (string, error) {
	if t == nil {
		return "", nil
	}
	if s, ok := constText(t); ok {
		return s, nil
	}
	if p.data == nil && !p.slow {
		data := p.r.Template()
		if p.mapped {
			raw, err := p.r.Item()
			if err == nil {
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.UseNumber() // as task.Run.Render decodes the element
				err = dec.Decode(&data.Item)
			}
			if err != nil {
				p.slow = true
			}
		}
		if !p.slow {
			p.data = &data
		}
	}
	if p.slow {
		return p.r.Render(t)
	}
	var b strings.Builder
	if err := t.Execute(&b, *p.data); err != nil {
		return "", fmt.Errorf("task %q: render %s: %w", p.r.Info().TaskID, t.Name(), err)
	}
	return b.String(), nil
}

// constText returns the text of a template that has no actions.
func constText(t *template.Template) (string, bool) {
	if t.Tree == nil || t.Tree.Root == nil {
		return "", false
	}
	switch nodes := t.Tree.Root.Nodes; len(nodes) {
	case 0:
		return "", true
	case 1:
		if n, ok := nodes[0].(*parse.TextNode); ok {
			return string(n.Text), true
		}
	}
	return "", false
}

func indexEnv(env []corev1.EnvVar, name string) int {
	for i := range env {
		if env[i].Name == name {
			return i
		}
	}
	return -1
}
