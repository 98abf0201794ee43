// Package e2e holds the end-to-end tests of trellis against a real Kubernetes
// cluster (hack/kube-up.sh): the quickstart DAG and the DAGs of
// testdata/kubedag run in pods under the minimal RBAC of testdata/rbac.yaml.
// Without a cluster the tests skip, unless CI is set, where they fail.
package e2e
