package kubernetes

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Client is what the executor needs of the API server: the pods and the events
// of a namespace (core/v1). Its methods return the small interfaces PodClient
// and EventClient, whose methods client-go's typed core/v1 client has with the
// same signatures, so that a program may pass a clientset (ClientOf adapts
// it), the fake clientset of tests, or a client of its own that links no
// typed client-go package.
type Client interface {
	// Pods returns the client of the namespace's pods.
	Pods(namespace string) PodClient
	// Events returns the client of the namespace's events.
	Events(namespace string) EventClient
}

// PodClient is the part of client-go's corev1client.PodInterface the executor
// calls; a PodInterface satisfies it.
type PodClient interface {
	// Create creates the pod and returns it as the API server stored it.
	Create(ctx context.Context, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error)
	// Get returns the named pod.
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	// List returns the pods that opts select.
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	// Watch watches the pods that opts select.
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	// Delete deletes the named pod.
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	// GetLogs returns the request of the named pod's log (Stream reads it).
	GetLogs(name string, opts *corev1.PodLogOptions) *rest.Request
}

// EventClient is the part of client-go's corev1client.EventInterface the
// executor calls; an EventInterface satisfies it.
type EventClient interface {
	// List returns the events that opts select.
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.EventList, error)
}

// ClientOf returns the Client whose Pods and Events are pods and events. It
// adapts the methods of a typed core/v1 client, whose return types are
// client-go's own interfaces:
//
//	kubeexec.ClientOf(cs.CoreV1().Pods, cs.CoreV1().Events)
//
// for a clientset cs (kubernetes.Interface, the fake clientset) or a
// corev1client.CoreV1Interface.
func ClientOf[P PodClient, E EventClient](pods func(namespace string) P, events func(namespace string) E) Client {
	return clientFuncs[P, E]{pods: pods, events: events}
}

// clientFuncs is the Client of ClientOf.
type clientFuncs[P PodClient, E EventClient] struct {
	pods   func(string) P
	events func(string) E
}

// Pods returns the pod client of the namespace.
func (c clientFuncs[P, E]) Pods(namespace string) PodClient { return c.pods(namespace) }

// Events returns the event client of the namespace.
func (c clientFuncs[P, E]) Events(namespace string) EventClient { return c.events(namespace) }
