package kubernetes

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// newPodInformer returns an informer, not yet started, of the pods that the
// client reaches (one namespace's) and that match selector. It lists and
// watches through the pod client, as client-go's generated pod informer does
// through the typed one, without linking the informer factory of every API
// group. Its cache needs no index: the client is scoped to one namespace, and
// pods are looked up by name (podLister).
func newPodInformer(pods PodClient, selector string) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return pods.Watch(ctx, o)
		},
	}
	// No resync: every change comes as an event, and timed re-checks are
	// delayed queue items.
	return cache.NewSharedIndexInformerWithOptions(lw, &corev1.Pod{}, cache.SharedIndexInformerOptions{})
}

// podLister reads the pods of one namespace from an informer's cache.
type podLister struct {
	indexer cache.Indexer
	ns      string
}

// Get returns the pod of that name, or a NotFound error. It is a map lookup
// by the cache's namespace/name key.
func (l podLister) Get(name string) (*corev1.Pod, error) {
	obj, ok, err := l.indexer.GetByKey(l.ns + "/" + name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("pod"), name)
	}
	return obj.(*corev1.Pod), nil
}

// List returns every pod in the cache (the namespace's pods of this
// instance). The pods are shared with the cache: callers must not modify them.
func (l podLister) List() []*corev1.Pod {
	objs := l.indexer.List()
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	return pods
}
