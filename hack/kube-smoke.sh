#!/usr/bin/env bash
# End-to-end check of a cluster started by hack/kube-up.sh, without kubectl:
#  - the API server answers /readyz (curl with the admin token);
#  - the restricted trellis-runner token is that user in group trellis-runners
#    and gets 403 listing pods (no RoleBinding exists for it);
#  - a pod from trellis.local/busybox:1 that echoes a line, writes
#    /dev/termination-log and exits 3 ends Failed with exit code 3 and that
#    message, and GET pods/NAME/log returns the echoed line.
# Exits non-zero with a one-line reason on the first failure.
set -euo pipefail
# shellcheck source=kube-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-lib.sh"

[[ -f "$S/env" ]] || die "no $S/env: run hack/kube-up.sh first"
[[ -x "$TOOLS/kubetool" ]] || die "no $TOOLS/kubetool: run hack/kube-up.sh first"
api="https://$HOST_IP:$API_PORT"
ready=$(curl -sS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(<"$PKI/admin.token")" "$api/readyz") ||
	die "cannot reach $api/readyz"
[[ $ready == ok ]] || die "$api/readyz answered '$ready'"
echo "ok: $api/readyz = ok"
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $(<"$PKI/trellis-runner.token")" "$api/api/v1/namespaces/default/pods") ||
	die "cannot reach $api as trellis-runner"
[[ $code == 403 ]] || die "trellis-runner listing pods with curl: HTTP $code, want 403"
echo "ok: curl as trellis-runner GET /api/v1/namespaces/default/pods = 403"
"$TOOLS/kubetool" smoke --kubeconfig "$S/admin.kubeconfig" --runner-kubeconfig "$S/runner.kubeconfig" \
	--image "$BUSYBOX_IMAGE" --timeout 120s
echo "smoke: all checks passed"
