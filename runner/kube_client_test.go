package runner

import (
	"errors"
	"testing"
)

func TestKubeClientLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		cfg       KubernetesConfig
		env       map[string]string
		qps       float32
		burst     int
		wantUsage bool
	}{
		{name: "defaults", qps: DefaultQPS, burst: DefaultBurst},
		{name: "config", cfg: KubernetesConfig{QPS: 50, Burst: 80}, qps: 50, burst: 80},
		{name: "environment wins over config", cfg: KubernetesConfig{QPS: 50, Burst: 80},
			env: map[string]string{"TRELLIS_KUBE_QPS": "12.5", "TRELLIS_KUBE_BURST": "25"}, qps: 12.5, burst: 25},
		{name: "only burst", env: map[string]string{"TRELLIS_KUBE_BURST": "7"}, qps: DefaultQPS, burst: 7},
		{name: "bad qps", env: map[string]string{"TRELLIS_KUBE_QPS": "fast"}, wantUsage: true},
		{name: "zero qps", env: map[string]string{"TRELLIS_KUBE_QPS": "0"}, wantUsage: true},
		{name: "fractional burst", env: map[string]string{"TRELLIS_KUBE_BURST": "1.5"}, wantUsage: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := New(Config{Kubernetes: tc.cfg, Getenv: func(k string) string { return tc.env[k] }})
			qps, burst, err := r.kubeDefaults().limits()
			if tc.wantUsage {
				var u *UsageError
				if !errors.As(err, &u) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if qps != tc.qps || burst != tc.burst {
				t.Errorf("limits = %v, %d; want %v, %d", qps, burst, tc.qps, tc.burst)
			}
		})
	}
}
