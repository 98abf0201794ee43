// Command kubetool is the kubectl-free helper of hack/kube-up.sh,
// hack/kube-down.sh and hack/kube-smoke.sh:
//
//	kubetool wait-ready --kubeconfig K [--node node1] [--namespace default] [--timeout 120s]
//	    waits until the node is Ready with no node.kubernetes.io/not-ready taint,
//	    and the namespace has its "default" ServiceAccount and the
//	    kube-root-ca.crt ConfigMap (both needed before a pod can be created/started).
//	kubetool cri-clean --socket SOCK [--timeout 60s]
//	    stops and removes every pod sandbox (and so its containers) through the
//	    CRI, so that CNI and mounts are torn down properly.
//	kubetool smoke --kubeconfig ADMIN --runner-kubeconfig RUNNER [--image trellis.local/busybox:1]
//	    the end-to-end check of docs/local-cluster.md.
//
// Every wait is bounded; every failure is one line on stderr and exit code 1.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: kubetool wait-ready|cri-clean|smoke [flags]"))
	}
	var err error
	switch os.Args[1] {
	case "wait-ready":
		err = waitReady(os.Args[2:])
	case "cri-clean":
		err = criClean(os.Args[2:])
	case "smoke":
		err = smoke(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kubetool:", err)
	os.Exit(1)
}

func client(kubeconfig string) (*kubernetes.Clientset, error) {
	cs, _, err := clientAndConfig(kubeconfig)
	return cs, err
}

func clientAndConfig(kubeconfig string) (*kubernetes.Clientset, *rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	return cs, cfg, err
}

// poll calls cond every interval until it returns true or an error, or ctx ends.
// The last "not yet" reason is part of the timeout error.
func poll(ctx context.Context, what string, cond func(context.Context) (bool, string, error)) error {
	reason := "not checked yet"
	for {
		ok, why, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if why != "" {
			reason = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s (%s)", what, reason)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func waitReady(args []string) error {
	fs := flag.NewFlagSet("wait-ready", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	node := fs.String("node", "node1", "node name")
	ns := fs.String("namespace", "default", "namespace that must be ready for pods")
	timeout := fs.Duration("timeout", 120*time.Second, "overall bound")
	fs.Parse(args)
	cs, err := client(*kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	err = poll(ctx, "node "+*node+" Ready without the not-ready taint", func(ctx context.Context) (bool, string, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, *node, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status != corev1.ConditionTrue {
					return false, "Ready=" + string(c.Status) + ": " + c.Message, nil
				}
				ready = true
			}
		}
		if !ready {
			return false, "no Ready condition yet", nil
		}
		for _, t := range n.Spec.Taints {
			if t.Key == "node.kubernetes.io/not-ready" || t.Key == "node.kubernetes.io/unreachable" {
				return false, "taint " + t.Key + " still present", nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		return err
	}
	err = poll(ctx, "ServiceAccount "+*ns+"/default", func(ctx context.Context) (bool, string, error) {
		_, err := cs.CoreV1().ServiceAccounts(*ns).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
	if err != nil {
		return err
	}
	return poll(ctx, "ConfigMap "+*ns+"/kube-root-ca.crt", func(ctx context.Context) (bool, string, error) {
		_, err := cs.CoreV1().ConfigMaps(*ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
}

func criClean(args []string) error {
	fs := flag.NewFlagSet("cri-clean", flag.ExitOnError)
	socket := fs.String("socket", "", "containerd socket path")
	timeout := fs.Duration("timeout", 60*time.Second, "overall bound")
	fs.Parse(args)
	if *socket == "" {
		return errors.New("cri-clean: --socket is required")
	}
	conn, err := grpc.NewClient("unix://"+*socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range resp.Items {
		name := sb.Id[:12]
		if sb.Metadata != nil {
			name = sb.Metadata.Namespace + "/" + sb.Metadata.Name
		}
		if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", name, err))
		}
		if _, err := rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", name, err))
			continue
		}
		fmt.Fprintf(os.Stderr, "kubetool: removed pod sandbox %s\n", name)
	}
	return errors.Join(errs...)
}

func smoke(args []string) error {
	fs := flag.NewFlagSet("smoke", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	runnerKubeconfig := fs.String("runner-kubeconfig", "", "kubeconfig of the restricted trellis-runner user")
	image := fs.String("image", "trellis.local/busybox:1", "image with /bin/sh")
	ns := fs.String("namespace", "default", "namespace")
	timeout := fs.Duration("timeout", 120*time.Second, "overall bound")
	doExec := fs.Bool("exec", true, "also check exec into a running pod")
	fs.Parse(args)
	cs, cfg, err := clientAndConfig(*kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()

	// 1. The restricted user is who we think, and may not list pods.
	if *runnerKubeconfig != "" {
		rc, err := client(*runnerKubeconfig)
		if err != nil {
			return err
		}
		ssr, err := rc.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("runner SelfSubjectReview: %w", err)
		}
		u := ssr.Status.UserInfo
		if u.Username != "trellis-runner" || !contains(u.Groups, "trellis-runners") {
			return fmt.Errorf("runner token is user %q groups %v, want trellis-runner in trellis-runners", u.Username, u.Groups)
		}
		_, err = rc.CoreV1().Pods(*ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			return fmt.Errorf("runner listing pods: want 403 Forbidden, got %v", err)
		}
		fmt.Printf("ok: restricted user %s %v gets 403 listing pods in %s\n", u.Username, u.Groups, *ns)
	}

	// 2. A pod that echoes, writes a termination message and exits 3.
	name := fmt.Sprintf("trellis-smoke-%d", time.Now().UnixNano()%1_000_000)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "trellis-smoke"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:            "main",
				Image:           *image,
				ImagePullPolicy: corev1.PullNever,
				Command:         []string{"/bin/sh", "-c", "echo hello from trellis smoke; printf 'bye from trellis' > /dev/termination-log; exit 3"},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(*ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod: %w", err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		zero := int64(0)
		_ = cs.CoreV1().Pods(*ns).Delete(dctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}()
	var got *corev1.Pod
	err = poll(ctx, "pod "+name+" to finish", func(ctx context.Context) (bool, string, error) {
		p, err := cs.CoreV1().Pods(*ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		got = p
		switch p.Status.Phase {
		case corev1.PodFailed, corev1.PodSucceeded:
			return true, "", nil
		}
		why := "phase " + string(p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Waiting != nil {
				why += ", waiting: " + c.State.Waiting.Reason + " " + c.State.Waiting.Message
			}
		}
		return false, why, nil
	})
	if err != nil {
		return err
	}
	if got.Status.Phase != corev1.PodFailed {
		return fmt.Errorf("pod %s: phase %s, want Failed", name, got.Status.Phase)
	}
	if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Terminated == nil {
		return fmt.Errorf("pod %s: no terminated container status: %+v", name, got.Status.ContainerStatuses)
	}
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term.ExitCode != 3 {
		return fmt.Errorf("pod %s: exit code %d, want 3", name, term.ExitCode)
	}
	if term.Message != "bye from trellis" {
		return fmt.Errorf("pod %s: termination message %q, want %q", name, term.Message, "bye from trellis")
	}
	fmt.Printf("ok: pod %s phase=%s exitCode=%d reason=%s message=%q on node %s ip %s (%.1fs)\n",
		name, got.Status.Phase, term.ExitCode, term.Reason, term.Message, got.Spec.NodeName, got.Status.PodIP, time.Since(start).Seconds())

	// 3. The log, through the API server and the kubelet.
	rc, err := cs.CoreV1().Pods(*ns).GetLogs(name, &corev1.PodLogOptions{Container: "main"}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("pod %s log: %w", name, err)
	}
	defer rc.Close()
	logs, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("pod %s log: %w", name, err)
	}
	if strings.TrimSpace(string(logs)) != "hello from trellis smoke" {
		return fmt.Errorf("pod %s log: got %q, want %q", name, logs, "hello from trellis smoke\n")
	}
	fmt.Printf("ok: GET pods/%s/log = %q\n", name, logs)
	if *doExec {
		return smokeExec(ctx, cs, cfg, *ns, *image)
	}
	return nil
}

// smokeExec runs a command in a running pod through the API server, the
// kubelet and containerd's stream server.
func smokeExec(ctx context.Context, cs *kubernetes.Clientset, cfg *rest.Config, ns, image string) error {
	name := fmt.Sprintf("trellis-smoke-exec-%d", time.Now().UnixNano()%1_000_000)
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "trellis-smoke"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "main", Image: image, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sleep", "60"},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod: %w", err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		_ = cs.CoreV1().Pods(ns).Delete(dctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}()
	err := poll(ctx, "pod "+name+" Running", func(ctx context.Context) (bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if p.Status.Phase != corev1.PodPending && p.Status.Phase != corev1.PodRunning {
			return false, "", fmt.Errorf("phase %s", p.Status.Phase)
		}
		return p.Status.Phase == corev1.PodRunning, "phase " + string(p.Status.Phase), nil
	})
	if err != nil {
		return err
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: "main",
			Command:   []string{"sh", "-c", "echo exec-ok; echo to-stderr >&2"},
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return fmt.Errorf("exec in pod %s: %w", name, err)
	}
	if stdout.String() != "exec-ok\n" || stderr.String() != "to-stderr\n" {
		return fmt.Errorf("exec in pod %s: stdout %q stderr %q", name, stdout.String(), stderr.String())
	}
	fmt.Printf("ok: exec in pod %s: stdout %q stderr %q\n", name, stdout.String(), stderr.String())
	return nil
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
