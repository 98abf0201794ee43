package k8s

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func checkPodName(t *testing.T, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		t.Errorf("PodName %q is not a DNS-1123 label: %v", name, errs)
	}
	if errs := apivalidation.NameIsDNSSubdomain(name, false); len(errs) > 0 {
		t.Errorf("PodName %q is not a valid pod name: %v", name, errs)
	}
}

func TestPodName(t *testing.T) {
	long := strings.Repeat("very_long_dag_name.", 10)
	tests := []struct {
		dag, run, task string
		try            int
		prefix         string // the readable part, up to the hash
	}{
		{"etl", "scheduled__2024-01-01T03:00:00+00:00", "extract", 1, "etl-extract-1-"},
		{"ETL_Daily", "manual__x", "Load.Orders", 2, "etl-daily-load-orders-2-"},
		{"etl", "r", "extract", 12, "etl-extract-12-"},
		{"_-.", "r", "日本", 1, "1-"},
		{"", "", "", 0, "0-"},
		{"etl", "r", "t", -3, "etl-t-3-"},
		{long, "r", long, 1, "very-long-dag-name-very-very-long-dag-name-very-1-"},
		{long, "r", "extract", 1, "very-long-dag-name-very-long-dag-name-ve-extract-1-"},
		{"etl", "r", long, 1, "etl-very-long-dag-name-very-long-dag-name-very-l-1-"},
	}
	for _, tt := range tests {
		name := PodName(tt.dag, tt.run, tt.task, tt.try)
		checkPodName(t, name)
		if !strings.HasPrefix(name, tt.prefix) || len(name) != len(tt.prefix)+hashLen {
			t.Errorf("PodName(%q, %q, %q, %d) = %q, want %q + %d hash characters", tt.dag, tt.run, tt.task, tt.try, name, tt.prefix, hashLen)
		}
		if again := PodName(tt.dag, tt.run, tt.task, tt.try); again != name {
			t.Errorf("PodName not deterministic: %q, then %q", name, again)
		}
	}
}

func TestPodNameUnique(t *testing.T) {
	long := strings.Repeat("x", 100)
	seen := map[string]string{}
	add := func(dag, run, task string, try int) {
		name := PodName(dag, run, task, try)
		checkPodName(t, name)
		id := strings.Join([]string{dag, run, task, string(rune('0' + try))}, "|")
		if prev, ok := seen[name]; ok && prev != id {
			t.Errorf("PodName collision: %q for %s and %s", name, prev, id)
		}
		seen[name] = id
	}
	for try := 1; try <= 3; try++ {
		for _, run := range []string{"r1", "r2", "scheduled__2024-01-01", "scheduled__2024-01-02"} {
			add("etl", run, "extract", try)
			// Ids that look the same once made DNS-safe and truncated.
			add(long+"a", run, long, try)
			add(long+"b", run, long, try)
			add("etl.x", run, "t", try)
			add("etl-x", run, "t", try)
			add("etl", run, "x-t", try)
			add("etl-x-t", run, "", try)
		}
	}
	// Field boundaries are part of the identity.
	add("ab", "c", "d", 1)
	add("a", "bc", "d", 1)
	add("a", "b", "cd", 1)
}

func TestLabelValue(t *testing.T) {
	valid := []string{"", "etl", "ETL_Daily.v2", "a-b", strings.Repeat("a", 63)}
	for _, s := range valid {
		if got := LabelValue(s); got != s {
			t.Errorf("LabelValue(%q) = %q, want it unchanged", s, got)
		}
	}
	tests := []struct{ in, prefix string }{
		{"scheduled__2024-01-01T03:00:00+00:00", "scheduled__2024-01-01T03_00_00_00_00-"},
		{"-leading", "leading-"},
		{"trailing.", "trailing-"},
		{"日本", ""},
		{strings.Repeat("a", 64), strings.Repeat("a", 50) + "-"},
		{"has space", "has_space-"},
		{strings.Repeat("a", 49) + "-" + strings.Repeat("b", 20), strings.Repeat("a", 49) + "-"},
	}
	for _, tt := range tests {
		got := LabelValue(tt.in)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q, invalid: %v", tt.in, got, errs)
		}
		if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+hashLen {
			t.Errorf("LabelValue(%q) = %q, want %q + hash", tt.in, got, tt.prefix)
		}
		if LabelValue(tt.in) != got {
			t.Errorf("LabelValue(%q) not deterministic", tt.in)
		}
	}
	// Strings that sanitize alike still differ.
	a, b := LabelValue("a:b"), LabelValue("a;b")
	if a == b {
		t.Errorf("LabelValue(a:b) == LabelValue(a;b) == %q", a)
	}
	// A valid value and an invalid one that sanitizes to it differ too.
	if LabelValue("a_b") == LabelValue("a:b") {
		t.Error("LabelValue(a_b) == LabelValue(a:b)")
	}
}

func TestTryIdentity(t *testing.T) {
	id := TryIdentity{DAGID: "etl", RunID: "scheduled__2024-01-01T03:00:00+00:00", TaskID: "extract", Try: 2, Instance: "runner-7f9c"}
	if id.PodName() != PodName(id.DAGID, id.RunID, id.TaskID, id.Try) {
		t.Error("TryIdentity.PodName differs from PodName")
	}
	l := id.Labels()
	if errs := metav1validation.ValidateLabels(l, field.NewPath("labels")); len(errs) > 0 {
		t.Errorf("labels invalid: %v", errs)
	}
	want := map[string]string{
		LabelDAG: "etl", LabelTask: "extract", LabelTry: "2", LabelInstance: "runner-7f9c",
		LabelRun: LabelValue(id.RunID),
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	a := id.Annotations()
	if errs := apivalidation.ValidateAnnotations(a, field.NewPath("annotations")); len(errs) > 0 {
		t.Errorf("annotations invalid: %v", errs)
	}
	if a[LabelRun] != id.RunID || a[LabelDAG] != "etl" || a[LabelTry] != "2" || a[LabelInstance] != "runner-7f9c" {
		t.Errorf("annotations = %v", a)
	}
	sel, err := labels.Parse(InstanceSelector(id.Instance))
	if err != nil || !sel.Matches(labels.Set(l)) {
		t.Errorf("InstanceSelector %q: %v, matches %v", InstanceSelector(id.Instance), err, err == nil && sel.Matches(labels.Set(l)))
	}
	if other, _ := labels.Parse(InstanceSelector("runner-other")); other.Matches(labels.Set(l)) {
		t.Error("another instance's selector matches")
	}
	noInstance := id
	noInstance.Instance = ""
	if _, ok := noInstance.Labels()[LabelInstance]; ok {
		t.Error("empty Instance still labelled")
	}
	if id.String() != "etl/scheduled__2024-01-01T03:00:00+00:00/extract#2" {
		t.Errorf("String = %q", id.String())
	}
}

func FuzzPodNameAndLabelValue(f *testing.F) {
	f.Add("etl", "scheduled__2024-01-01T03:00:00+00:00", "extract", 1)
	f.Add("", "", "", 0)
	f.Add(strings.Repeat("é", 80), "x", "---", -100)
	f.Fuzz(func(t *testing.T, dag, run, task string, try int) {
		checkPodName(t, PodName(dag, run, task, try))
		for _, s := range []string{dag, run, task} {
			v := LabelValue(s)
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("LabelValue(%q) = %q: %v", s, v, errs)
			}
		}
	})
}

// TestPodNameMapped: a mapped task instance's pod name carries its map
// index, never shortened, differs between instances and from the task's
// own name, and is unchanged for a task that is not mapped.
func TestPodNameMapped(t *testing.T) {
	run := "scheduled__2024-01-01T03:00:00+00:00"
	seen := map[string]bool{}
	for k := range 200 {
		name := PodName("etl", run, "resize["+strconv.Itoa(k)+"]", 1)
		checkPodName(t, name)
		if want := "etl-resize-" + strconv.Itoa(k) + "-1-"; !strings.HasPrefix(name, want) {
			t.Errorf("instance %d: %q, want prefix %q", k, name, want)
		}
		if seen[name] {
			t.Errorf("instance %d: name %q already taken", k, name)
		}
		seen[name] = true
	}
	if name := PodName("etl", run, "resize", 1); seen[name] || !strings.HasPrefix(name, "etl-resize-1-") {
		t.Errorf("unmapped task: %q", name)
	}
	long := strings.Repeat("very_long_name_", 8)
	name := PodName(long, run, long+"[1023]", 12)
	checkPodName(t, name)
	if !strings.Contains(name, "-1023-12-") {
		t.Errorf("long ids: %q lost the map index or the try", name)
	}
}

// TestTryIdentityMapped: the labels and annotations of a mapped instance's
// pod name the task (not the instance) and carry the map index, which
// IdentityOf turns back into the instance id; an unmapped task's pod has no
// map index.
func TestTryIdentityMapped(t *testing.T) {
	id := TryIdentity{DAGID: "etl", RunID: "manual__x", TaskID: "resize[3]", Try: 2, Instance: "r1"}
	labels, ann := id.Labels(), id.Annotations()
	if labels[LabelTask] != "resize" || labels[LabelMapIndex] != "3" || ann[LabelTask] != "resize" || ann[LabelMapIndex] != "3" {
		t.Errorf("labels %v annotations %v", labels, ann)
	}
	if errs := metav1validation.ValidateLabels(labels, field.NewPath("labels")); len(errs) > 0 {
		t.Errorf("invalid labels: %v", errs)
	}
	sel, err := labels2Selector(LabelTask + "=resize," + LabelMapIndex + "=3")
	if err != nil || !sel(labels) {
		t.Errorf("selector by task and map index does not match: %v", err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: ann}}
	if back, ok := IdentityOf(pod); !ok || back != id {
		t.Errorf("IdentityOf = %+v, %v; want %+v", back, ok, id)
	}
	plain := TryIdentity{DAGID: "etl", RunID: "manual__x", TaskID: "extract", Try: 1}
	if _, ok := plain.Labels()[LabelMapIndex]; ok {
		t.Error("an unmapped task's pod has a map index label")
	}
	if _, ok := plain.Annotations()[LabelMapIndex]; ok {
		t.Error("an unmapped task's pod has a map index annotation")
	}
	pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: plain.Annotations()}}
	if back, ok := IdentityOf(pod); !ok || back != plain {
		t.Errorf("IdentityOf(unmapped) = %+v, %v", back, ok)
	}
	pod.Annotations[LabelMapIndex] = "x"
	if _, ok := IdentityOf(pod); ok {
		t.Error("IdentityOf accepted map index \"x\"")
	}
	if _, ok := IdentityOf(&corev1.Pod{}); ok {
		t.Error("IdentityOf accepted a pod without trellis annotations")
	}
}

func labels2Selector(s string) (func(map[string]string) bool, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, err
	}
	return func(m map[string]string) bool { return sel.Matches(labels.Set(m)) }, nil
}
