package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

const protobufType = "application/vnd.kubernetes.protobuf"

// kubeServer is an API server of the tests: handlers by pattern, and
// responses encoded in the media type that the request accepts first (JSON or
// protobuf), as the API server negotiates them.
type kubeServer struct {
	t      *testing.T
	codecs serializer.CodecFactory
	mux    *http.ServeMux
	url    string
	accept string // the media type that clients accept first
}

func newKubeServer(t *testing.T) *kubeServer {
	t.Helper()
	scheme, err := newKubeScheme()
	if err != nil {
		t.Fatal(err)
	}
	s := &kubeServer{t: t, codecs: serializer.NewCodecFactory(scheme), mux: http.NewServeMux()}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(s.mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// client returns a client of the server that sends contentType (and accepts
// it first, then JSON), as newKubeClients builds it.
func (s *kubeServer) client(contentType string) *kubeClients {
	s.t.Helper()
	cfg := &rest.Config{Host: s.url, QPS: 100, Burst: 100}
	cfg.ContentType = contentType
	if contentType == protobufType {
		cfg.AcceptContentTypes = protobufType + ",application/json"
	}
	c, err := newKubeClients(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.accept = contentType
	return c
}

// handle serves pattern ("METHOD /path/{name}") with h.
func (s *kubeServer) handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// serializer returns the serializer of the response to r.
func (s *kubeServer) serializer(r *http.Request) runtime.SerializerInfo {
	mediaType := "application/json"
	if strings.HasPrefix(r.Header.Get("Accept"), protobufType) {
		mediaType = protobufType
	}
	if s.accept != "" && mediaType != s.accept {
		s.t.Errorf("%s %s: Accept %q, want %s first", r.Method, r.URL.Path, r.Header.Get("Accept"), s.accept)
	}
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		s.t.Fatalf("no serializer for %s", mediaType)
	}
	return info
}

// write answers r with obj of gv, and code.
func (s *kubeServer) write(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion, code int, obj runtime.Object) {
	info := s.serializer(r)
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(code)
	if err := s.codecs.EncoderForVersion(info.Serializer, gv).Encode(obj, w); err != nil {
		s.t.Errorf("encode %T: %v", obj, err)
	}
}

// fail answers r with the status of an API error.
func (s *kubeServer) fail(w http.ResponseWriter, r *http.Request, err *apierrors.StatusError) {
	s.write(w, r, metav1.Unversioned, int(err.ErrStatus.Code), &err.ErrStatus)
}

// read decodes r's body into obj, checking that it is sent as contentType.
func (s *kubeServer) read(r *http.Request, contentType string, obj runtime.Object) {
	if got := r.Header.Get("Content-Type"); got != contentType {
		s.t.Errorf("%s %s: Content-Type %q, want %q", r.Method, r.URL.Path, got, contentType)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("read the body: %v", err)
		return
	}
	if _, _, err := s.codecs.UniversalDeserializer().Decode(body, nil, obj); err != nil {
		s.t.Errorf("decode the body of %s %s: %v", r.Method, r.URL.Path, err)
	}
}

// watch streams events to r as the API server does (each object encoded in
// the negotiated media type, in a frame of its stream serializer), then ends
// the stream.
func (s *kubeServer) watch(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion, events ...watch.Event) {
	info := s.serializer(r)
	contentType := info.MediaType
	if contentType == protobufType {
		contentType += ";stream=watch"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	frames := info.StreamSerializer.Framer.NewFrameWriter(w)
	embedded := s.codecs.EncoderForVersion(info.Serializer, gv)
	for _, ev := range events {
		raw, err := runtime.Encode(embedded, ev.Object)
		if err != nil {
			s.t.Errorf("encode %T: %v", ev.Object, err)
			return
		}
		out := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}
		if err := info.StreamSerializer.Encode(out, frames); err != nil {
			s.t.Errorf("encode the watch event: %v", err)
			return
		}
		w.(http.Flusher).Flush()
	}
}

// wantQuery checks the request's query parameters.
func wantQuery(t *testing.T, r *http.Request, want url.Values) {
	t.Helper()
	if got := r.URL.Query(); got.Encode() != want.Encode() {
		t.Errorf("%s %s: query %s, want %s", r.Method, r.URL.Path, got.Encode(), want.Encode())
	}
}

// contentTypes are the two encodings the client may send: JSON (client-go's
// default) and protobuf (the runner's).
var contentTypes = []string{"application/json", protobufType}

// TestKubeRESTPods: the pod calls of the executor send client-go's requests
// (paths, query parameters from the options, bodies) and decode the answers,
// a watch's events, and API errors, in JSON and in protobuf.
func TestKubeRESTPods(t *testing.T) {
	t.Parallel()
	for _, ct := range contentTypes {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			s := newKubeServer(t)
			gv := corev1.SchemeGroupVersion
			stored := func(name string) *corev1.Pod {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: "u-" + types.UID(name), ResourceVersion: "7",
					Labels: map[string]string{"trellis.dev/instance": "i1"}}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
			}
			s.handle("POST /api/v1/namespaces/team/pods", func(w http.ResponseWriter, r *http.Request) {
				wantQuery(t, r, url.Values{"fieldManager": {"trellis"}})
				var p corev1.Pod
				s.read(r, ct, &p)
				if p.Name != "a" || p.Spec.Containers[0].Image != "busybox" {
					t.Errorf("created pod = %+v", p)
				}
				p.UID, p.ResourceVersion = "u-a", "7"
				s.write(w, r, gv, http.StatusCreated, &p)
			})
			s.handle("GET /api/v1/namespaces/team/pods/{name}", func(w http.ResponseWriter, r *http.Request) {
				wantQuery(t, r, url.Values{"resourceVersion": {"0"}})
				if name := r.PathValue("name"); name != "a" {
					s.fail(w, r, apierrors.NewNotFound(corev1.Resource("pods"), name))
					return
				}
				s.write(w, r, gv, http.StatusOK, stored("a"))
			})
			s.handle("GET /api/v1/namespaces/team/pods", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("watch") == "true" {
					wantQuery(t, r, url.Values{"watch": {"true"}, "labelSelector": {"trellis.dev/instance=i1"},
						"resourceVersion": {"7"}, "timeoutSeconds": {"30"}, "timeout": {"30s"}, "allowWatchBookmarks": {"true"}})
					b := stored("b")
					gone := stored("a")
					gone.ResourceVersion = "9"
					s.watch(w, r, gv, watch.Event{Type: watch.Added, Object: b}, watch.Event{Type: watch.Deleted, Object: gone})
					return
				}
				wantQuery(t, r, url.Values{"labelSelector": {"trellis.dev/instance=i1"}, "limit": {"500"}, "resourceVersion": {"0"}})
				s.write(w, r, gv, http.StatusOK, &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "7"},
					Items: []corev1.Pod{*stored("a")}})
			})
			s.handle("DELETE /api/v1/namespaces/team/pods/a", func(w http.ResponseWriter, r *http.Request) {
				wantQuery(t, r, url.Values{})
				var o metav1.DeleteOptions
				s.read(r, ct, &o)
				if o.GracePeriodSeconds == nil || *o.GracePeriodSeconds != 5 || o.Preconditions == nil || *o.Preconditions.UID != "u-a" {
					t.Errorf("delete options = %+v", o)
				}
				s.write(w, r, gv, http.StatusOK, stored("a"))
			})
			s.handle("DELETE /api/v1/namespaces/team/pods/b", func(w http.ResponseWriter, r *http.Request) {
				s.fail(w, r, apierrors.NewConflict(corev1.Resource("pods"), "b", errors.New("precondition failed: UID in precondition: u-x, UID in object meta: u-b")))
			})
			since := metav1.NewTime(time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC))
			s.handle("GET /api/v1/namespaces/team/pods/a/log", func(w http.ResponseWriter, r *http.Request) {
				wantQuery(t, r, url.Values{"container": {"base"}, "follow": {"true"}, "timestamps": {"true"},
					"sinceTime": {"2026-11-29T16:00:00Z"}})
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprint(w, "2026-11-29T16:00:01Z hello\n")
			})

			c := s.client(ct)
			pods := c.Pods("team")
			ctx := context.Background()
			created, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "busybox"}}}},
				metav1.CreateOptions{FieldManager: "trellis"})
			if err != nil || created.UID != "u-a" || created.Spec.Containers[0].Image != "busybox" {
				t.Errorf("Create = %+v, %v", created, err)
			}
			got, err := pods.Get(ctx, "a", metav1.GetOptions{ResourceVersion: "0"})
			if err != nil || got.Name != "a" || got.Status.Phase != corev1.PodRunning {
				t.Errorf("Get = %+v, %v", got, err)
			}
			if _, err := pods.Get(ctx, "x", metav1.GetOptions{ResourceVersion: "0"}); !apierrors.IsNotFound(err) {
				t.Errorf("Get of a missing pod: %v, want NotFound", err)
			}
			list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "trellis.dev/instance=i1", Limit: 500, ResourceVersion: "0"})
			if err != nil || list.ResourceVersion != "7" || len(list.Items) != 1 || list.Items[0].Name != "a" {
				t.Errorf("List = %+v, %v", list, err)
			}

			w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "trellis.dev/instance=i1", ResourceVersion: "7",
				TimeoutSeconds: ptr(int64(30)), AllowWatchBookmarks: true})
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			var seen []string
			for ev := range w.ResultChan() { // the server ends the stream after two events
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					t.Fatalf("watch event %s of %T: %+v", ev.Type, ev.Object, ev.Object)
				}
				seen = append(seen, fmt.Sprintf("%s %s/%s@%s", ev.Type, p.Namespace, p.Name, p.ResourceVersion))
			}
			w.Stop()
			if want := "ADDED team/b@7, DELETED team/a@9"; strings.Join(seen, ", ") != want {
				t.Errorf("watch events: %s, want %s", strings.Join(seen, ", "), want)
			}

			g := int64(5)
			uid := types.UID("u-a")
			if err := pods.Delete(ctx, "a", metav1.DeleteOptions{GracePeriodSeconds: &g, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
				t.Errorf("Delete: %v", err)
			}
			if err := pods.Delete(ctx, "b", metav1.DeleteOptions{}); !apierrors.IsConflict(err) {
				t.Errorf("Delete of a replaced pod: %v, want a conflict", err)
			}

			rc, err := pods.GetLogs("a", &corev1.PodLogOptions{Container: "base", Follow: true, Timestamps: true, SinceTime: &since}).Stream(ctx)
			if err != nil {
				t.Fatalf("GetLogs: %v", err)
			}
			defer rc.Close()
			if b, err := io.ReadAll(rc); err != nil || string(b) != "2026-11-29T16:00:01Z hello\n" {
				t.Errorf("log = %q, %v", b, err)
			}
		})
	}
}

// TestKubeRESTEvents: the events of a pod are listed with a field selector.
func TestKubeRESTEvents(t *testing.T) {
	t.Parallel()
	for _, ct := range contentTypes {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			s := newKubeServer(t)
			s.handle("GET /api/v1/namespaces/team/events", func(w http.ResponseWriter, r *http.Request) {
				wantQuery(t, r, url.Values{"fieldSelector": {"involvedObject.name=a,involvedObject.uid=u-a"}})
				s.write(w, r, corev1.SchemeGroupVersion, http.StatusOK, &corev1.EventList{Items: []corev1.Event{
					{ObjectMeta: metav1.ObjectMeta{Name: "a.1"}, Type: "Warning", Reason: "Failed", Message: "pull failed"}}})
			})
			list, err := s.client(ct).Events("team").List(context.Background(),
				metav1.ListOptions{FieldSelector: "involvedObject.name=a,involvedObject.uid=u-a"})
			if err != nil || len(list.Items) != 1 || list.Items[0].Reason != "Failed" || list.Items[0].Message != "pull failed" {
				t.Errorf("List = %+v, %v", list, err)
			}
		})
	}
}

// TestKubeRESTLeases: the Lease calls of the election go to
// coordination.k8s.io/v1, and a conflicting update is a conflict.
func TestKubeRESTLeases(t *testing.T) {
	t.Parallel()
	for _, ct := range contentTypes {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			s := newKubeServer(t)
			gv := coordinationv1.SchemeGroupVersion
			const base = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
			s.handle("GET "+base+"/{name}", func(w http.ResponseWriter, r *http.Request) {
				wantQuery(t, r, url.Values{})
				s.fail(w, r, apierrors.NewNotFound(coordinationv1.Resource("leases"), r.PathValue("name")))
			})
			s.handle("POST "+base, func(w http.ResponseWriter, r *http.Request) {
				var l coordinationv1.Lease
				s.read(r, ct, &l)
				if l.Name != "team" || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "a" {
					t.Errorf("created lease = %+v", l)
				}
				l.ResourceVersion = "1"
				s.write(w, r, gv, http.StatusCreated, &l)
			})
			s.handle("PUT "+base+"/team", func(w http.ResponseWriter, r *http.Request) {
				var l coordinationv1.Lease
				s.read(r, ct, &l)
				if l.ResourceVersion != "1" {
					s.fail(w, r, apierrors.NewConflict(coordinationv1.Resource("leases"), l.Name, errors.New("the object has been modified")))
					return
				}
				l.ResourceVersion = "2"
				s.write(w, r, gv, http.StatusOK, &l)
			})

			leases := s.client(ct).Leases("ns")
			ctx := context.Background()
			if _, err := leases.Get(ctx, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Get: %v, want NotFound", err)
			}
			l, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "team"},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("a"), LeaseDurationSeconds: ptr(int32(15))}}, metav1.CreateOptions{})
			if err != nil || l.ResourceVersion != "1" || *l.Spec.LeaseDurationSeconds != 15 {
				t.Fatalf("Create = %+v, %v", l, err)
			}
			l.Spec.HolderIdentity = ptr("b")
			u, err := leases.Update(ctx, l, metav1.UpdateOptions{})
			if err != nil || u.ResourceVersion != "2" || *u.Spec.HolderIdentity != "b" {
				t.Errorf("Update = %+v, %v", u, err)
			}
			l.ResourceVersion = "0"
			if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
				t.Errorf("stale Update: %v, want a conflict", err)
			}
		})
	}
}

// TestKubeClientFromKubeconfig: kubeClient builds the client of a kubeconfig
// with the runner's protobuf content types and limits; its two API groups
// share one HTTP client and one rate limiter, and reachable reads /version.
func TestKubeClientFromKubeconfig(t *testing.T) {
	t.Parallel()
	s := newKubeServer(t)
	s.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		if accept := r.Header.Get("Accept"); accept != protobufType+",application/json" {
			t.Errorf("Accept %q", accept)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"major":"1","minor":"34","gitVersion":"v1.34.3"}`)
	})
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t0k}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team}}]
current-context: x
`, s.url), 0o600); err != nil {
		t.Fatal(err)
	}
	c, cfg, err := New(Config{}).kubeClient(kubeOptions{kubeconfig: kubeconfig, qps: "20", burst: "40"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ContentType != protobufType || cfg.QPS != 20 || cfg.Burst != 40 {
		t.Errorf("config: content type %q, QPS %v, Burst %d", cfg.ContentType, cfg.QPS, cfg.Burst)
	}
	if c.core.Client != c.coordination.Client || c.core.GetRateLimiter() != c.coordination.GetRateLimiter() || c.core.GetRateLimiter() == nil {
		t.Error("the API groups' clients do not share one HTTP client and one rate limiter")
	}
	if got := c.coordination.Get().Resource("leases").URL().Path; got != "/apis/coordination.k8s.io/v1/leases" {
		t.Errorf("coordination path %s", got)
	}
	if err := reachable(c); err != nil {
		t.Errorf("reachable: %v", err)
	}
	v, err := c.serverVersion(context.Background())
	if err != nil || v.GitVersion != "v1.34.3" {
		t.Errorf("serverVersion = %+v, %v", v, err)
	}
}

// TestReachableFails: a server that answers /version with an error is no
// cluster.
func TestReachableFails(t *testing.T) {
	t.Parallel()
	s := newKubeServer(t)
	s.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	})
	err := reachable(s.client("application/json"))
	if !errors.Is(err, errNoCluster) || !strings.Contains(err.Error(), "the API server does not answer") {
		t.Errorf("reachable: %v", err)
	}
}
