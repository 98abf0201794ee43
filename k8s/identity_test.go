package k8s

import (
	"strings"
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
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
