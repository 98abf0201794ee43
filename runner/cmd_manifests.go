package runner

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"text/template"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
)

// manifestOptions shape the Kubernetes objects of a team's deployment.
type manifestOptions struct {
	name, namespace, image string
	storage, storageClass  string
	port                   int
	tokensSecret           string
	// dbSecret, when set, is the Secret whose key dbSecretKey holds a
	// PostgreSQL DSN: two replicas, a rolling update, no volume claim.
	dbSecret, dbSecretKey string
	executor              string
	workerCommand         []string // this binary's path in the image (Runner.workerCommand)
	taskRBAC              []taskRBAC
}

// taskRBAC is a rule a task needs (k8s.RBACTask), with the task's name.
type taskRBAC struct {
	task string // dag.task
	k8s.RBACRule
}

// taskRBAC returns the rules the DAGs' tasks need (k8s.RBACTask), such as
// the Kubernetes object sensor's get on its resource.
func (r *Runner) taskRBAC() []taskRBAC {
	var out []taskRBAC
	for _, d := range r.dags {
		for _, t := range d.Tasks() {
			if rt, ok := t.(k8s.RBACTask); ok {
				for _, rule := range rt.KubeRBAC() {
					out = append(out, taskRBAC{task: d.ID() + "." + t.ID(), RBACRule: rule})
				}
			}
		}
	}
	return out
}

func cmdManifests(_ context.Context, r *Runner, args []string) error {
	f := newFlags(r, "manifests")
	def := dnsLabel(progName())
	o := manifestOptions{}
	f.fs.StringVar(&o.name, "name", def, "name of every object (a DNS label)")
	f.fs.StringVar(&o.namespace, "namespace", "default", "namespace of the objects")
	f.fs.StringVar(&o.image, "image", "", "image of this binary (required), e.g. registry.example.com/team:1.2.3")
	f.fs.StringVar(&o.storage, "storage-size", "5Gi", "size of the database's PersistentVolumeClaim")
	f.fs.StringVar(&o.storage, "storage", "5Gi", "the same as --storage-size (kept for older scripts)")
	f.fs.StringVar(&o.storageClass, "storage-class", "", "storage class of the claim (default: the cluster's)")
	f.fs.IntVar(&o.port, "port", 8080, "port the UI, API, metrics and probes listen on")
	f.fs.StringVar(&o.tokensSecret, "tokens-secret", "", "Secret holding the access tokens file (default <name>-tokens)")
	f.fs.StringVar(&o.executor, "executor", "kubernetes", "where the Deployment runs Go and Bash tasks: kubernetes (a pod per try, from --image) or local (in the runner's pod)")
	f.fs.StringVar(&o.dbSecret, "db-secret", "", "Secret holding a PostgreSQL DSN: two replicas (one schedules, the other is a hot standby that serves the UI and API) with a rolling update and no volume claim; the DSN reaches serve as $TRELLIS_DB and is never printed (default: one replica on a SQLite file in a PersistentVolumeClaim)")
	f.fs.StringVar(&o.dbSecretKey, "db-secret-key", "dsn", "key of the DSN in --db-secret")
	dockerfile := f.fs.Bool("dockerfile", false, "print an example Dockerfile instead")
	if _, err := f.parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if *dockerfile {
		b, err := r.dockerfile()
		if err != nil {
			return fmt.Errorf("manifests: %w", err)
		}
		_, err = r.cfg.Stdout.Write(b)
		return err
	}
	if o.image == "" {
		return usagef("manifests: --image is required (the image this binary is built into; see manifests --dockerfile)")
	}
	if dnsLabel(o.name) != o.name {
		return usagef("manifests: --name %q: want a DNS label (lower case letters, digits, '-')", o.name)
	}
	if _, err := resource.ParseQuantity(o.storage); err != nil {
		return usagef("manifests: --storage-size %q: %v", o.storage, err)
	}
	if o.port < 1 || o.port > 65535 {
		return usagef("manifests: --port %d: out of range", o.port)
	}
	if o.executor != "kubernetes" && o.executor != "local" {
		return usagef("manifests: --executor %q: want kubernetes or local", o.executor)
	}
	if o.tokensSecret == "" {
		o.tokensSecret = o.name + "-tokens"
	}
	if o.dbSecret == "" && set["db-secret-key"] {
		return usagef("manifests: --db-secret-key needs --db-secret")
	}
	if o.dbSecret != "" {
		if errs := validation.IsDNS1123Subdomain(o.dbSecret); len(errs) > 0 {
			return usagef("manifests: --db-secret %q: not a Secret name: %s", o.dbSecret, strings.Join(errs, "; "))
		}
		if errs := validation.IsConfigMapKey(o.dbSecretKey); len(errs) > 0 {
			return usagef("manifests: --db-secret-key %q: not a Secret key: %s", o.dbSecretKey, strings.Join(errs, "; "))
		}
		for _, name := range []string{"storage-size", "storage", "storage-class"} {
			if set[name] {
				return usagef("manifests: --%s: --db-secret has no volume claim (the database is PostgreSQL)", name)
			}
		}
	}
	o.workerCommand = r.workerCommand()
	o.taskRBAC = r.taskRBAC()
	out, err := renderManifests(o)
	if err != nil {
		return err
	}
	_, err = r.cfg.Stdout.Write(out)
	return err
}

// dockerfileTmpl is the team's image: this binary at the path every worker pod
// runs (workerCommand), on a base with a shell when a DAG has Bash tasks.
var dockerfileTmpl = template.Must(template.New("Dockerfile").Parse(`# The image of {{.Name}}: this binary at {{.Path}}, the ENTRYPOINT of the runner
# pod and the command of every worker pod (manifests sets TRELLIS_WORKER_COMMAND={{.Path}}).
# Build it at the root of the module:
#   docker build -t registry.example.com/{{.Name}}:1.0.0 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# modernc.org/sqlite is pure Go: the binary is static; -s -w drop the symbol tables.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/{{.Name}} {{.Package}}
{{if .Shell}}
# The DAGs have Bash tasks ({{.ShellTasks}}): they run with /bin/sh (bash when
# present), so the image needs a shell and the tools your commands call.
FROM debian:12-slim
{{- else}}
# No Bash task: a static image without a shell.
FROM gcr.io/distroless/static-debian12:nonroot
{{- end}}
COPY --from=build /out/{{.Name}} {{.Path}}
USER 65532:65532
ENTRYPOINT ["{{.Path}}"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--db", "/data/trellis.db", "--tokens", "/etc/trellis/tokens"]
`))

// dockerfile renders the Dockerfile of this binary.
func (r *Runner) dockerfile() ([]byte, error) {
	path := r.workerCommand()[0]
	var shellTasks []string
	for _, d := range r.dags {
		for _, t := range d.Tasks() {
			if task.SettingsOf(t).Kind == task.KindBash {
				shellTasks = append(shellTasks, d.ID()+"."+t.ID())
			}
		}
	}
	if len(shellTasks) > 3 {
		shellTasks = append(shellTasks[:3], fmt.Sprintf("and %d more", len(shellTasks)-3))
	}
	var b bytes.Buffer
	err := dockerfileTmpl.Execute(&b, map[string]any{
		"Name": workerBinaryName(), "Path": path, "Package": mainPackage(),
		"Shell": len(shellTasks) > 0, "ShellTasks": strings.Join(shellTasks, ", "),
	})
	return b.Bytes(), err
}

// mainPackage is this binary's main package relative to its module's root
// ("./cmd/team"), from the build information; "./cmd/<name>" when unknown.
func mainPackage() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
		if bi.Path == bi.Main.Path {
			return "."
		}
		if rel, ok := strings.CutPrefix(bi.Path, bi.Main.Path+"/"); ok {
			return "./" + rel
		}
	}
	return "./cmd/" + workerBinaryName()
}

func renderManifests(o manifestOptions) ([]byte, error) {
	labels := map[string]string{"app.kubernetes.io/name": o.name, "app.kubernetes.io/part-of": "trellis"}
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: o.name, Namespace: o.namespace, Labels: labels}
	}
	uid := int64(65532)
	grace := int64(60)
	yes, no := true, false
	claim := corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: meta(),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse(o.storage)}},
		},
	}
	if o.storageClass != "" {
		claim.Spec.StorageClassName = &o.storageClass
	}
	sa := corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta()}
	own, others := o.rbacByNamespace()
	role := rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: meta(),
		Rules:      mergeRules(runnerRules(o.dbSecret == ""), own),
	}
	binding := rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta(),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: o.name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: o.name, Namespace: o.namespace}},
	}
	// Tasks that read objects of other namespaces: a Role and a RoleBinding
	// to the runner's ServiceAccount in each, named <name>.<namespace> so
	// that they do not collide with a deployment of the same name there.
	objs := []any{&sa, &role, &binding}
	for _, ns := range slices.Sorted(maps.Keys(others)) {
		m := metav1.ObjectMeta{Name: o.name + "." + o.namespace, Namespace: ns, Labels: labels}
		r := rbacv1.Role{TypeMeta: role.TypeMeta, ObjectMeta: m, Rules: mergeRules(nil, others[ns])}
		rb := rbacv1.RoleBinding{TypeMeta: binding.TypeMeta, ObjectMeta: m, Subjects: binding.Subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: m.Name}}
		objs = append(objs, &r, &rb)
	}
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds: period, TimeoutSeconds: 3, FailureThreshold: 3}
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	// The executor, the workers' image, and the runner instance: the
	// Deployment's name, unique in its namespace and the same across
	// restarts, so that a new runner pod adopts the pods of the old one and
	// two Deployments of one binary never touch each other's pods.
	env := []corev1.EnvVar{fieldEnv("POD_NAME", "metadata.name"), fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		{Name: "TRELLIS_EXECUTOR", Value: o.executor}, {Name: "TRELLIS_IMAGE", Value: o.image}, {Name: "TRELLIS_INSTANCE", Value: o.name},
		{Name: "TRELLIS_WORKER_COMMAND", Value: strings.Join(o.workerCommand, " ")}}
	replicas := int32(1)
	// One SQLite file on a ReadWriteOnce volume: the old pod goes before the new one starts.
	strategy := appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	args := []string{"serve", "--listen", fmt.Sprintf("0.0.0.0:%d", o.port), "--db", "/data/trellis.db",
		"--tokens", "/etc/trellis/tokens", "--leader-elect", "--lease-name", o.name}
	mounts := []corev1.VolumeMount{
		{Name: "data", MountPath: "/data"},
		{Name: "tokens", MountPath: "/etc/trellis/tokens", ReadOnly: true},
		{Name: "tmp", MountPath: "/tmp"},
	}
	volumes := []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.name}}},
		{Name: "tokens", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: o.tokensSecret}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	var affinity *corev1.Affinity
	if o.dbSecret != "" {
		// PostgreSQL: two replicas, preferably on two nodes; the one holding
		// the database's advisory lock schedules, the other serves the UI and
		// the API, ready, and takes the lock within a second of the holder's
		// death (its connection ends). No Lease: it would make the standby
		// wait for the Lease to expire (15 s) after a crash. A rolling update
		// starts a new standby before it stops an old replica.
		replicas = 2
		maxSurge, maxUnavailable := intstr.FromInt32(1), intstr.FromInt32(0)
		strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable}}
		args = []string{"serve", "--listen", fmt.Sprintf("0.0.0.0:%d", o.port),
			"--tokens", "/etc/trellis/tokens", "--leader-elect=false"}
		env = append(env, corev1.EnvVar{Name: "TRELLIS_DB", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: o.dbSecret}, Key: o.dbSecretKey}}})
		mounts, volumes = mounts[1:], volumes[1:] // no data volume
		affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": o.name}}}}}}}
	}
	deploy := appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Strategy: strategy,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": o.name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            o.name,
					Affinity:                      affinity,
					TerminationGracePeriodSeconds: &grace,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:           "trellis",
						Image:          o.image,
						Args:           args,
						Env:            env,
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: int32(o.port)}},
						ReadinessProbe: probe("/readyz", 5),
						LivenessProbe:  probe("/healthz", 10),
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							RunAsNonRoot: &yes, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						VolumeMounts: mounts,
					}},
					Volumes: volumes,
				},
			},
		},
	}
	svc := corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": o.name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# trellis deployment of %s in namespace %s.\n", o.name, o.namespace)
	fmt.Fprintf(&b, "# The tokens Secret is not printed (it holds secrets); create it first:\n")
	fmt.Fprintf(&b, "#   kubectl -n %s create secret generic %s --from-file=tokens=./tokens   # lines: token role [name]\n", o.namespace, o.tokensSecret)
	if o.dbSecret != "" {
		fmt.Fprintf(&b, "# The database is PostgreSQL: its DSN is key %s of Secret %s (not printed); create it first:\n", o.dbSecretKey, o.dbSecret)
		fmt.Fprintf(&b, "#   kubectl -n %s create secret generic %s --from-literal=%s='postgres://user:password@host:5432/db?search_path=schema'\n", o.namespace, o.dbSecret, o.dbSecretKey)
		fmt.Fprintf(&b, "# Two replicas: one schedules, the other serves the UI and API and takes over when it dies.\n")
		fmt.Fprintf(&b, "# The image is the one `%s manifests --dockerfile` describes.\n", workerBinaryName())
	} else {
		class := "the cluster's default StorageClass"
		if o.storageClass != "" {
			class = "StorageClass " + o.storageClass
		}
		fmt.Fprintf(&b, "# The claim %s (%s, ReadWriteOnce) is provisioned by %s; without one, create a\n", o.name, o.storage, class)
		fmt.Fprintf(&b, "# PersistentVolume for it first. The image is the one `%s manifests --dockerfile` describes.\n", workerBinaryName())
	}
	if len(o.taskRBAC) > 0 {
		fmt.Fprintf(&b, "# Tasks read objects through the API server as the runner; the Roles grant them:\n")
		for _, t := range o.taskRBAC {
			ns := t.Namespace
			if ns == "" {
				ns = o.namespace
			}
			fmt.Fprintf(&b, "#   %s: %s in namespace %s\n", t.task, describeRule(t.Rule), ns)
			if !knownNamespace(t.Namespace) {
				fmt.Fprintf(&b, "#     NOT GRANTED HERE: that namespace is known only at run time; grant it there to ServiceAccount %s/%s.\n", o.namespace, o.name)
			}
		}
	}
	if o.dbSecret == "" {
		objs = append(objs, &claim)
	}
	objs = append(objs, &deploy, &svc)
	for i, obj := range objs {
		y, err := cleanYAML(obj)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// runnerRules are what the runner does with the API server in its own
// namespace: its pods, their logs and events, and with lease the scheduler
// Lease.
func runnerRules(lease bool) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list"}},
	}
	if lease {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}})
	}
	return rules
}

// rbacByNamespace sorts the rules the tasks need by namespace: the runner's
// own, and other namespaces by name; namespaces known only at run time (a
// template) are left out (the header names them).
func (o manifestOptions) rbacByNamespace() (own []rbacv1.PolicyRule, others map[string][]rbacv1.PolicyRule) {
	others = map[string][]rbacv1.PolicyRule{}
	for _, t := range o.taskRBAC {
		switch ns := t.Namespace; {
		case ns == "" || ns == o.namespace:
			own = append(own, t.Rule)
		case knownNamespace(ns):
			others[ns] = append(others[ns], t.Rule)
		}
	}
	return own, others
}

// knownNamespace reports whether a rule's namespace is known before the run:
// "" (the runner's) or a namespace's name, not a template.
func knownNamespace(ns string) bool {
	return ns == "" || len(validation.IsDNS1123Label(ns)) == 0
}

// describeRule says what a rule grants: "get on configmaps (flag)".
func describeRule(r rbacv1.PolicyRule) string {
	var res []string
	for _, g := range r.APIGroups {
		for _, x := range r.Resources {
			if g != "" {
				x += "." + g
			}
			res = append(res, x)
		}
	}
	s := strings.Join(r.Verbs, ",") + " on " + strings.Join(res, ", ")
	if len(r.ResourceNames) > 0 {
		s += " (" + strings.Join(r.ResourceNames, ", ") + ")"
	}
	return s
}

// ruleAtom is one permission: a verb on a resource of an API group, on one
// object (name) or on all ("").
type ruleAtom struct{ group, resource, name, verb string }

func atoms(rules []rbacv1.PolicyRule) []ruleAtom {
	var out []ruleAtom
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						out = append(out, ruleAtom{g, res, n, v})
					}
				}
			}
		}
	}
	return out
}

// mergeRules returns base followed by the extra rules that base does not
// grant already, merged: deduplicated, one rule per API group, resource and
// set of verbs, with the names it is limited to (none: every object), sorted
// by group and resource, rules on every object first, then by verbs.
func mergeRules(base, extra []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	granted := map[ruleAtom]bool{} // by base
	for _, a := range atoms(base) {
		granted[a] = true
	}
	extraAtoms := atoms(extra)
	onEvery := map[ruleAtom]bool{} // asked for on every object by an extra rule
	for _, a := range extraAtoms {
		if a.name == "" {
			onEvery[a] = true
		}
	}
	type object struct{ group, resource, name string }
	verbs := map[object][]string{}
	for _, a := range extraAtoms {
		every := ruleAtom{a.group, a.resource, "", a.verb}
		if granted[a] || granted[every] || (a.name != "" && onEvery[every]) {
			continue
		}
		o := object{a.group, a.resource, a.name}
		if !slices.Contains(verbs[o], a.verb) {
			verbs[o] = append(verbs[o], a.verb)
		}
	}
	type key struct {
		group, resource string
		every           bool // on every object
		verbs           string
	}
	names := map[key][]string{}
	for o, vs := range verbs {
		slices.Sort(vs)
		k := key{o.group, o.resource, o.name == "", strings.Join(vs, ",")}
		names[k] = append(names[k], o.name)
	}
	keys := slices.Collect(maps.Keys(names))
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.group, b.group); c != 0 {
			return c
		}
		if c := cmp.Compare(a.resource, b.resource); c != 0 {
			return c
		}
		if a.every != b.every {
			if a.every {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.verbs, b.verbs)
	})
	out := slices.Clone(base)
	for _, k := range keys {
		rule := rbacv1.PolicyRule{APIGroups: []string{k.group}, Resources: []string{k.resource}, Verbs: strings.Split(k.verbs, ",")}
		if !k.every {
			rule.ResourceNames = slices.Sorted(slices.Values(names[k]))
		}
		out = append(out, rule)
	}
	return out
}

// cleanYAML marshals a Kubernetes object without the empty status and null
// creation timestamps that the typed structs always carry.
func cleanYAML(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	prune(m)
	return yaml.Marshal(m)
}

func prune(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			prune(val)
			switch y := val.(type) {
			case nil:
				delete(x, k)
			case map[string]any:
				if len(y) == 0 && (k == "status" || k == "metadata" || k == "resources") {
					delete(x, k)
				}
			}
		}
	case []any:
		for _, e := range x {
			prune(e)
		}
	}
}
