package kubeobject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/jsonpath"

	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
)

// Bounds of a poke.
const (
	// MaxValue bounds the sensor's value: a field's value longer than that
	// fails the try; an object (no FieldPath) longer than that is replaced by
	// its identity (apiVersion, kind and the names and versions of its
	// metadata).
	MaxValue = 64 << 10
	// MaxObject bounds the object a poke reads.
	MaxObject = 8 << 20
	// RequestTimeout bounds a poke's GET when the task has no Timeout.
	RequestTimeout = 30 * time.Second
)

// ObjectSpec says which object an Object sensor reads and what it waits for.
type ObjectSpec struct {
	// Group, Version and Resource name the resource, as in RBAC rules and
	// API paths: Group "" (the core group), "apps", "batch" or a custom
	// resource's group; Version "v1"; Resource the lower-case plural,
	// "configmaps", "deployments". Subresources are not supported.
	Group, Version, Resource string
	// Namespace is the object's namespace; it may be a template with the
	// fields of task.TemplateData. Default: the runner's namespace (that of
	// k8s.Cluster when the runner sets it, else $TRELLIS_NAMESPACE, else the
	// kubeconfig context's, in a cluster the runner pod's, else "default").
	Namespace string
	// Name is the object's name (required); it may be a template.
	Name string
	// FieldPath is a JSONPath into the object, as kubectl's -o jsonpath
	// takes it, with or without the braces: ".status.phase",
	// `{.status.conditions[?(@.type=="Ready")].status}`. A field that holds
	// a string is its value; a number, boolean, object or list is its JSON;
	// several matches are joined by spaces. Empty: the sensor waits only
	// until the object exists, and its value is the object as JSON.
	FieldPath string
	// Equals, when not empty, must be the field's value for the sensor to be
	// done (use Match to wait for an empty value).
	Equals string
	// Match, when set, must accept the field's value for the sensor to be
	// done. With neither Equals nor Match, the field existing (and not null)
	// is enough.
	Match func(value string) bool
	// Kubeconfig and Context choose the cluster when set; else the
	// k8s.Cluster the runner gives its tries, else $KUBECONFIG, else
	// ~/.kube/config, else the in-cluster config, as the runner chooses its
	// own.
	Kubeconfig, Context string
	// Config, when set, is the client configuration to use instead (its
	// host, credentials and transport); Kubeconfig and Context must then be
	// empty.
	Config *rest.Config
}

// Sensor is the task Object returns: a sensor whose value is the field's
// value (or the object's JSON), and a k8s.RBACTask that reports the access
// it needs.
type Sensor struct {
	*task.ValueSensor[string]
	rules []k8s.RBACRule
}

var (
	_ k8s.RBACTask     = (*Sensor)(nil)
	_ task.Ref[string] = (*Sensor)(nil)
)

// KubeRBAC returns the access the sensor needs: get on its resource in its
// namespace ("" for the runner's, a template when Namespace is one), limited
// to the object's name when Name is not a template.
func (s *Sensor) KubeRBAC() []k8s.RBACRule {
	out := make([]k8s.RBACRule, len(s.rules))
	for i, r := range s.rules {
		out[i] = k8s.RBACRule{Namespace: r.Namespace, Rule: *r.Rule.DeepCopy()}
	}
	return out
}

// Object waits until the object spec names exists and, with a FieldPath,
// until its field meets the condition (Equals, Match). An object not found,
// a field missing or not matching, a server error (5xx, 429) or an
// unreachable server are a "not yet", logged in the try's log; a 403 is an
// error (apierrors.IsForbidden) that names the RBAC verb and resource to
// grant, and other client errors (401, 400...) are errors. The value is the
// field's value, or without a FieldPath the object as JSON (without
// metadata.managedFields), bounded by MaxValue.
//
// Pokes run in the runner's process with the runner's identity (task
// options such as task.Executor do not move them); each is one GET of
// /api/v1/namespaces/NS/RESOURCE/NAME (core group) or
// /apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME, bounded by the task's
// Timeout, else by RequestTimeout.
func Object(id string, spec ObjectSpec, opts ...task.Option) *Sensor {
	p, err := newPoker(spec)
	if err != nil {
		opts = append(opts, task.Invalid(fmt.Errorf("kubernetes object sensor %q: %w", id, err)))
	}
	s := &Sensor{rules: p.rules()}
	s.ValueSensor = task.SensorOf(id, p.poke, opts...)
	return s
}

var (
	// A resource (lower-case plural) and a version: a DNS label.
	resourceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// An API group: a DNS subdomain.
	groupRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// poker is the state of one sensor: its parsed spec and its connections.
type poker struct {
	spec            ObjectSpec
	name, namespace *template.Template // namespace nil: the runner's
	path            string             // the JSONPath template, braces added; "" for none

	mu    sync.Mutex
	conns map[k8s.Cluster]*conn
}

func newPoker(spec ObjectSpec) (*poker, error) {
	p := &poker{spec: spec, conns: map[k8s.Cluster]*conn{}}
	var errs []error
	if spec.Group != "" && !groupRE.MatchString(spec.Group) {
		errs = append(errs, fmt.Errorf("group %q: want \"\" (the core group) or a DNS subdomain such as apps or example.com", spec.Group))
	}
	if !resourceRE.MatchString(spec.Version) {
		errs = append(errs, fmt.Errorf("version %q: want an API version such as v1", spec.Version))
	}
	if !resourceRE.MatchString(spec.Resource) {
		errs = append(errs, fmt.Errorf("resource %q: want a resource's lower-case plural such as configmaps (no subresource)", spec.Resource))
	}
	var err error
	if spec.Name == "" {
		errs = append(errs, errors.New("no object name"))
	} else if p.name, err = task.ParseTemplate("name", spec.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if spec.Namespace != "" {
		if p.namespace, err = task.ParseTemplate("namespace", spec.Namespace); err != nil {
			errs = append(errs, fmt.Errorf("namespace: %w", err))
		}
	}
	if spec.FieldPath != "" {
		p.path = relaxedPath(spec.FieldPath)
		if err := jsonpath.New("field").AllowMissingKeys(true).Parse(p.path); err != nil {
			errs = append(errs, fmt.Errorf("field path %q: %w", spec.FieldPath, err))
		}
	} else if spec.Equals != "" || spec.Match != nil {
		errs = append(errs, errors.New("the conditions Equals and Match need a FieldPath"))
	}
	if spec.Config != nil && (spec.Kubeconfig != "" || spec.Context != "") {
		errs = append(errs, errors.New("set either Config or Kubeconfig and Context"))
	}
	return p, errors.Join(errs...)
}

// relaxedPath accepts a path without braces, as kubectl's custom columns do:
// ".status.phase" and "status.phase" are "{.status.phase}".
func relaxedPath(path string) string {
	path = strings.TrimSpace(path)
	if strings.Contains(path, "{") {
		return path
	}
	if !strings.HasPrefix(path, ".") && !strings.HasPrefix(path, "[") {
		path = "." + path
	}
	return "{" + path + "}"
}

// rules is the access the sensor needs (see Sensor.KubeRBAC).
func (p *poker) rules() []k8s.RBACRule {
	rule := rbacv1.PolicyRule{APIGroups: []string{p.spec.Group}, Resources: []string{p.spec.Resource}, Verbs: []string{"get"}}
	if p.spec.Name != "" && !strings.Contains(p.spec.Name, "{{") {
		rule.ResourceNames = []string{p.spec.Name}
	}
	return []k8s.RBACRule{{Namespace: p.spec.Namespace, Rule: rule}}
}

// resource is the resource as kubectl names it: "configmaps", "deployments.apps".
func (p *poker) resource() string {
	if p.spec.Group == "" {
		return p.spec.Resource
	}
	return p.spec.Resource + "." + p.spec.Group
}

// poke reads the object once.
func (p *poker) poke(ctx context.Context, r *task.Run) (bool, string, error) {
	if p.name == nil {
		return false, "", errors.New("invalid sensor: no object name")
	}
	name, err := r.Render(p.name)
	if err != nil {
		return false, "", fmt.Errorf("name: %w", err)
	}
	ns := ""
	if p.namespace != nil {
		if ns, err = r.Render(p.namespace); err != nil {
			return false, "", fmt.Errorf("namespace: %w", err)
		}
		if ns == "" {
			return false, "", fmt.Errorf("namespace %q renders empty", p.spec.Namespace)
		}
	}
	if err := pathSegment(name); err != nil {
		return false, "", fmt.Errorf("name %q: %w", name, err)
	}
	c, err := p.connect(ctx)
	if err != nil {
		return false, "", err
	}
	if ns == "" {
		ns = c.namespace
	}
	if err := pathSegment(ns); err != nil {
		return false, "", fmt.Errorf("namespace %q: %w", ns, err)
	}
	what := fmt.Sprintf("%s %s/%s", p.resource(), ns, name)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, RequestTimeout)
		defer cancel()
	}
	obj, found, err := p.get(ctx, r, c, ns, name, what)
	if err != nil || !found {
		return false, "", err
	}
	if p.path == "" {
		return true, p.objectValue(r, obj, what), nil
	}
	value, ok, err := evaluate(p.path, obj)
	switch {
	case err != nil:
		fmt.Fprintf(r.Output(), "%s: field %s: %v; not yet\n", what, p.spec.FieldPath, err)
		return false, "", nil
	case !ok:
		fmt.Fprintf(r.Output(), "%s: no field %s yet\n", what, p.spec.FieldPath)
		return false, "", nil
	case len(value) > MaxValue:
		return false, "", fmt.Errorf("%s: field %s is %d bytes, more than %d: choose a narrower FieldPath", what, p.spec.FieldPath, len(value), MaxValue)
	case p.spec.Equals != "" && value != p.spec.Equals:
		fmt.Fprintf(r.Output(), "%s: %s is %s, want %q; not yet\n", what, p.spec.FieldPath, quote(value), p.spec.Equals)
		return false, "", nil
	case p.spec.Match != nil && !p.spec.Match(value):
		fmt.Fprintf(r.Output(), "%s: %s is %s, no match yet\n", what, p.spec.FieldPath, quote(value))
		return false, "", nil
	}
	fmt.Fprintf(r.Output(), "%s: %s is %s; done\n", what, p.spec.FieldPath, quote(value))
	return true, value, nil
}

// pathSegment checks that a name can be a segment of an API path, as the API
// server's names must (apimachinery's ValidatePathSegmentName).
func pathSegment(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case s == "." || s == "..":
		return errors.New("may not be '.' or '..'")
	case strings.ContainsAny(s, "/%"):
		return errors.New("may not contain '/' or '%'")
	}
	return nil
}

// quote shortens a value for the log.
func quote(v string) string {
	const max = 200
	if len(v) > max {
		return fmt.Sprintf("%q... (%d bytes)", v[:max], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// get reads the object: found false (logged) when it is not there yet or the
// server cannot answer now.
func (p *poker) get(ctx context.Context, r *task.Run, c *conn, ns, name, what string) (map[string]any, bool, error) {
	u := c.base.JoinPath("namespaces", ns, p.spec.Resource, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, fmt.Errorf("get %s: %w", what, err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("get %s: %w", what, err)
		}
		fmt.Fprintf(r.Output(), "get %s: %v; not yet\n", what, err)
		return nil, false, nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxObject+1))
	if err != nil {
		fmt.Fprintf(r.Output(), "get %s: read the answer: %v; not yet\n", what, err)
		return nil, false, nil
	}
	if res.StatusCode == http.StatusOK {
		if len(body) > MaxObject {
			return nil, false, fmt.Errorf("get %s: the object is more than %d bytes", what, MaxObject)
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(body, &obj); err != nil {
			return nil, false, fmt.Errorf("get %s: decode the object: %w", what, err)
		}
		return obj, true, nil
	}
	serr := p.statusError(res.StatusCode, body, name)
	switch code := res.StatusCode; {
	case code == http.StatusNotFound:
		fmt.Fprintf(r.Output(), "%s: not found (%s); not yet\n", what, serr.ErrStatus.Message)
		return nil, false, nil
	case code == http.StatusForbidden:
		group := fmt.Sprintf("%q", p.spec.Group)
		if p.spec.Group == "" {
			group = `"" (core)`
		}
		return nil, false, fmt.Errorf("get %s: forbidden: the runner's identity lacks the RBAC verb \"get\" on resource %q of API group %s in namespace %s; "+
			"grant it with a Role in that namespace (the manifests command prints it): %w", what, p.spec.Resource, group, ns, serr)
	case code == http.StatusTooManyRequests || code >= 500:
		fmt.Fprintf(r.Output(), "get %s: %s (%s); not yet\n", what, res.Status, serr.ErrStatus.Message)
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("get %s: %s: %w", what, res.Status, serr)
}

// statusError is the API server's answer as the error client-go would return
// (apierrors' checks such as IsForbidden work on it).
func (p *poker) statusError(code int, body []byte, name string) *apierrors.StatusError {
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err == nil && st.Kind == "Status" && st.Code == int32(code) {
		return &apierrors.StatusError{ErrStatus: st}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return apierrors.NewGenericServerResponse(code, "get", schema.GroupResource{Group: p.spec.Group, Resource: p.spec.Resource}, name, msg, 0, false)
}

// objectValue is the value of a sensor without a FieldPath: the object as
// JSON without its managed fields, or its identity when that is longer than
// MaxValue.
func (p *poker) objectValue(r *task.Run, obj map[string]any, what string) string {
	meta, _ := obj["metadata"].(map[string]any)
	delete(meta, "managedFields")
	b, err := json.Marshal(obj)
	if err == nil && len(b) <= MaxValue {
		fmt.Fprintf(r.Output(), "%s exists; done\n", what)
		return string(b)
	}
	id := map[string]any{"apiVersion": obj["apiVersion"], "kind": obj["kind"]}
	m := map[string]any{}
	for _, k := range []string{"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"} {
		if v, ok := meta[k]; ok {
			m[k] = v
		}
	}
	id["metadata"] = m
	b, _ = json.Marshal(id)
	fmt.Fprintf(r.Output(), "%s exists; done (its value is its identity only: the object is more than %d bytes)\n", what, MaxValue)
	return string(b)
}

// evaluate applies a JSONPath template to obj as kubectl -o jsonpath prints
// it: a string as is, anything else as JSON, the matches of one {...} joined
// by spaces; ok false when a {...} matches nothing (or only nulls).
func evaluate(path string, obj map[string]any) (value string, ok bool, err error) {
	j := jsonpath.New("field").AllowMissingKeys(true)
	if err := j.Parse(path); err != nil {
		return "", false, err
	}
	results, err := j.FindResults(obj)
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	for _, vs := range results {
		var parts []string
		for _, v := range vs {
			s, present, err := text(v)
			if err != nil {
				return "", false, err
			}
			if present {
				parts = append(parts, s)
			}
		}
		if len(parts) == 0 {
			return "", false, nil
		}
		b.WriteString(strings.Join(parts, " "))
	}
	return b.String(), len(results) > 0, nil
}

// text is one match as text; present false for a null.
func text(v reflect.Value) (string, bool, error) {
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return "", false, nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return "", false, nil
	}
	if v.Kind() == reflect.String {
		return v.String(), true, nil
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return "", false, fmt.Errorf("encode a match as JSON: %w", err)
	}
	return string(b), true, nil
}

// conn is a client of one cluster.
type conn struct {
	client    *http.Client
	base      *url.URL // .../api/v1 or .../apis/GROUP/VERSION
	namespace string   // the runner's namespace
}

// connect returns the client of the sensor's cluster (see ObjectSpec), built
// once per cluster.
func (p *poker) connect(ctx context.Context) (*conn, error) {
	var key k8s.Cluster
	switch {
	case p.spec.Config != nil:
	case p.spec.Kubeconfig != "" || p.spec.Context != "":
		key = k8s.Cluster{Kubeconfig: p.spec.Kubeconfig, Context: p.spec.Context}
	default:
		key, _ = k8s.ClusterFrom(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[key]; c != nil {
		return c, nil
	}
	c, err := p.newConn(key)
	if err != nil {
		return nil, err
	}
	p.conns[key] = c
	return c, nil
}

func (p *poker) newConn(key k8s.Cluster) (*conn, error) {
	cfg, ns := p.spec.Config, key.Namespace
	if ns == "" {
		ns = os.Getenv("TRELLIS_NAMESPACE")
	}
	if cfg == nil {
		// As the runner loads its own: the kubeconfig file, else
		// $KUBECONFIG, else ~/.kube/config, else the in-cluster config.
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = key.Kubeconfig
		loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: key.Context})
		var err error
		if cfg, err = loader.ClientConfig(); err != nil {
			return nil, fmt.Errorf("kubernetes client: %s: %w", triedConfigs(key), err)
		}
		if ns == "" {
			ns, _, _ = loader.Namespace()
		}
	}
	if ns == "" {
		ns = "default"
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent() + " trellis-kubeobject-sensor"
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	host, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	base := host.JoinPath("api", p.spec.Version)
	if p.spec.Group != "" {
		base = host.JoinPath("apis", p.spec.Group, p.spec.Version)
	}
	return &conn{client: client, base: base, namespace: ns}, nil
}

// triedConfigs says where a client configuration was looked for.
func triedConfigs(key k8s.Cluster) string {
	var tried []string
	switch {
	case key.Kubeconfig != "":
		tried = append(tried, "kubeconfig "+key.Kubeconfig)
	case os.Getenv("KUBECONFIG") != "":
		tried = append(tried, "$KUBECONFIG="+os.Getenv("KUBECONFIG"))
	default:
		tried = append(tried, "~/.kube/config", "the in-cluster config ($KUBERNETES_SERVICE_HOST)")
	}
	if key.Context != "" {
		tried = append(tried, "context "+key.Context)
	}
	return "tried " + strings.Join(tried, ", ")
}
