package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	kubeexec "github.com/trellisdag/trellis/executor/kubernetes"
	"github.com/trellisdag/trellis/web/leader"
)

// kubeClients is the runner's client of the API server: the pods and events of
// core/v1 (the executor's), the Leases of coordination.k8s.io/v1 (the
// scheduler's), and the server's version. It satisfies kubeexec.Client and
// leader.Client.
//
// It is the runner's own, over client-go's rest.RESTClient, rather than
// client-go's typed clients, so that binaries link only two API groups: the
// typed clients import client-go's kubernetes/scheme, which registers every
// API group of k8s.io/api (about 57), and its apply configurations, which
// bring discovery, OpenAPI and gnostic; every team binary links the runner,
// so that cost seconds of build and megabytes of binary. Its scheme holds only
// core/v1 and coordination.k8s.io/v1, and it implements only the calls that
// the executor and the Lease election make, with the requests that client-go's
// generated clients send.
type kubeClients struct {
	core         *rest.RESTClient // /api/v1
	coordination *rest.RESTClient // /apis/coordination.k8s.io/v1
	params       runtime.ParameterCodec
}

var (
	_ kubeexec.Client = (*kubeClients)(nil)
	_ leader.Client   = (*kubeClients)(nil)
)

// newKubeScheme returns a scheme of only the types the runner's client sends
// and receives: core/v1, coordination.k8s.io/v1, and the meta/v1 options,
// Status and watch events, as client-go's scheme registers them.
func newKubeScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	if err := corev1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register core/v1: %w", err)
	}
	if err := coordinationv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register coordination.k8s.io/v1: %w", err)
	}
	return s, nil
}

// newKubeClients returns the client of cfg's cluster, as kubernetes.NewForConfig
// builds a clientset: its two REST clients (one per API group) share one HTTP
// client (its connections) and one rate limiter, so that QPS and Burst bound
// the runner's requests as a whole. The content types are cfg's (the runner's
// prefer protobuf; JSON is the default).
func newKubeClients(cfg *rest.Config) (*kubeClients, error) {
	scheme, err := newKubeScheme()
	if err != nil {
		return nil, err
	}
	c := *cfg
	if c.RateLimiter == nil && c.QPS > 0 {
		if c.Burst <= 0 {
			return nil, errors.New("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.QPS, c.Burst)
	}
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	httpClient, err := rest.HTTPClientFor(&c)
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	core, err := newRESTClient(c, "/api", corev1.SchemeGroupVersion, httpClient)
	if err != nil {
		return nil, err
	}
	coordination, err := newRESTClient(c, "/apis", coordinationv1.SchemeGroupVersion, httpClient)
	if err != nil {
		return nil, err
	}
	return &kubeClients{core: core, coordination: coordination, params: runtime.NewParameterCodec(scheme)}, nil
}

// newRESTClient returns the REST client of one API group version, served under
// apiPath, on httpClient.
func newRESTClient(c rest.Config, apiPath string, gv schema.GroupVersion, httpClient *http.Client) (*rest.RESTClient, error) {
	c.APIPath = apiPath
	c.GroupVersion = &gv
	rc, err := rest.RESTClientForConfigAndClient(&c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("rest client of %s: %w", gv, err)
	}
	return rc, nil
}

// Pods returns the client of the namespace's pods.
func (c *kubeClients) Pods(namespace string) kubeexec.PodClient {
	return kubePods{kubeResource{c.core, c.params, namespace, "pods"}}
}

// Events returns the client of the namespace's events.
func (c *kubeClients) Events(namespace string) kubeexec.EventClient {
	return kubeEvents{kubeResource{c.core, c.params, namespace, "events"}}
}

// Leases returns the client of the namespace's Leases.
func (c *kubeClients) Leases(namespace string) leader.LeaseClient {
	return kubeLeases{kubeResource{c.coordination, c.params, namespace, "leases"}}
}

// serverVersion returns the API server's version (GET /version).
func (c *kubeClients) serverVersion(ctx context.Context) (*version.Info, error) {
	raw, err := c.core.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var v version.Info
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("unable to parse the server version: %w", err)
	}
	return &v, nil
}

// kubeResource sends the requests of one resource of a namespace as
// client-go's generated clients (gentype) do. Its errors are the REST
// client's (apierrors' StatusError for an API error), as a typed client's are.
type kubeResource struct {
	client    *rest.RESTClient
	params    runtime.ParameterCodec
	namespace string
	resource  string
}

func (r kubeResource) get(ctx context.Context, name string, opts metav1.GetOptions, into runtime.Object) error {
	return r.client.Get().Namespace(r.namespace).Resource(r.resource).Name(name).
		VersionedParams(&opts, r.params).Do(ctx).Into(into)
}

func (r kubeResource) list(ctx context.Context, opts metav1.ListOptions, into runtime.Object) error {
	return r.client.Get().Namespace(r.namespace).Resource(r.resource).
		VersionedParams(&opts, r.params).Timeout(timeoutOf(opts)).Do(ctx).Into(into)
}

func (r kubeResource) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.client.Get().Namespace(r.namespace).Resource(r.resource).
		VersionedParams(&opts, r.params).Timeout(timeoutOf(opts)).Watch(ctx)
}

func (r kubeResource) create(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions, into runtime.Object) error {
	return r.client.Post().Namespace(r.namespace).Resource(r.resource).
		VersionedParams(&opts, r.params).Body(obj).Do(ctx).Into(into)
}

func (r kubeResource) update(ctx context.Context, name string, obj runtime.Object, opts metav1.UpdateOptions, into runtime.Object) error {
	return r.client.Put().Namespace(r.namespace).Resource(r.resource).Name(name).
		VersionedParams(&opts, r.params).Body(obj).Do(ctx).Into(into)
}

func (r kubeResource) delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return r.client.Delete().Namespace(r.namespace).Resource(r.resource).Name(name).
		Body(&opts).Do(ctx).Error()
}

// timeoutOf is the request timeout of a list or watch: its timeoutSeconds, or
// none.
func timeoutOf(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}

// kubePods is the pod client of one namespace.
type kubePods struct{ kubeResource }

// Create creates the pod.
func (c kubePods) Create(ctx context.Context, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	if err := c.create(ctx, pod, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns the named pod.
func (c kubePods) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	if err := c.get(ctx, name, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}

// List returns the pods that opts select.
func (c kubePods) List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	out := &corev1.PodList{}
	if err := c.list(ctx, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Watch watches the pods that opts select.
func (c kubePods) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return c.watch(ctx, opts)
}

// Delete deletes the named pod.
func (c kubePods) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return c.delete(ctx, name, opts)
}

// GetLogs returns the request of the named pod's log.
func (c kubePods) GetLogs(name string, opts *corev1.PodLogOptions) *rest.Request {
	return c.client.Get().Namespace(c.namespace).Name(name).Resource(c.resource).SubResource("log").
		VersionedParams(opts, c.params)
}

// kubeEvents is the event client of one namespace.
type kubeEvents struct{ kubeResource }

// List returns the events that opts select.
func (c kubeEvents) List(ctx context.Context, opts metav1.ListOptions) (*corev1.EventList, error) {
	out := &corev1.EventList{}
	if err := c.list(ctx, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}

// kubeLeases is the Lease client of one namespace.
type kubeLeases struct{ kubeResource }

// Get returns the named Lease.
func (c kubeLeases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	if err := c.get(ctx, name, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Create creates the Lease.
func (c kubeLeases) Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	if err := c.create(ctx, lease, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Update writes the Lease (a conflict when its resourceVersion is not the
// stored one).
func (c kubeLeases) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	if err := c.update(ctx, lease.Name, lease, opts, out); err != nil {
		return nil, err
	}
	return out, nil
}
