package leader_test

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/trellisdag/trellis/web/leader"
)

// ClientOf adapts a clientset (here the fake one; kubernetes.NewForConfig's
// alike) to the election's Client, for Lease.Client.
func ExampleClientOf() {
	cs := fake.NewClientset()
	client := leader.ClientOf(cs.CoordinationV1().Leases)

	ctx := context.Background()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "trellis-team"}}
	if _, err := client.Leases("team").Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	got, err := client.Leases("team").Get(ctx, "trellis-team", metav1.GetOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Namespace + "/" + got.Name)
	// Output: team/trellis-team
}
