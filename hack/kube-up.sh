#!/usr/bin/env bash
# Start a real single-node Kubernetes v1.34.3 cluster on this machine for the
# end-to-end tests (see docs/local-cluster.md). Idempotent: what already runs
# is left alone, what is missing is installed, created or started.
#
#   sudo hack/kube-up.sh        # prints: export KUBECONFIG=...
#
# Environment: TRELLIS_KUBE_DIR (state, default /tmp/trellis-kube),
# TRELLIS_CACHE (binaries, default ~/.cache/trellis), TRELLIS_KUBE_API_PORT
# (6443), TRELLIS_KUBE_ETCD_PORT (23790), TRELLIS_KUBE_ETCD_PEER_PORT (23791),
# TRELLIS_KUBE_SCHEDULER_PORT (10259), TRELLIS_KUBE_CONTROLLER_MANAGER_PORT (10257),
# TRELLIS_KUBE_SKIP_APT=1 (do not apt-get install).
set -euo pipefail
# shellcheck source=kube-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-lib.sh"

need_root
t0=$SECONDS
mkdir -p "$S" "$PKI" "$RUN" "$LOGS" "$TOOLS"
# One kube-up/kube-down at a time.
exec 8>"$S/.lock"
flock -w 300 8 || die "another kube-up/kube-down holds $S/.lock (waited 5 min)"

# ---------------------------------------------------------------- already up?
# A kube-up while the cluster runs only checks it: every component alive, the
# API server ready, the node Ready and reaching the pod network. Anything
# missing falls through to the full (idempotent) bring-up below.
cluster_ok() {
	local c
	for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
		pid_of "$c" >/dev/null || return 1
	done
	[[ -s $S/env && -x $TOOLS/kubetool && -s $PKI/admin.token && -s $PKI/ca.crt ]] || return 1
	[[ $(curl -sS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(<"$PKI/admin.token")" \
		"https://$HOST_IP:$API_PORT/readyz" 2>/dev/null) == ok ]] || return 1
	[[ -n $(ip netns exec "$NETNS" ip route show "$POD_CIDR" 2>/dev/null) ]] || return 1
	"$TOOLS/kubetool" wait-ready --kubeconfig "$S/admin.kubeconfig" --node "$NODE_NAME" --timeout 30s >/dev/null 2>&1
}
if cluster_ok; then
	log "cluster already up and ready (API https://$HOST_IP:$API_PORT, node $NODE_NAME); nothing to do"
	echo "export KUBECONFIG=$S/admin.kubeconfig"
	exit 0
fi

# ---------------------------------------------------------------- packages
# command -> Debian package that provides it
declare -A PKG_OF=(
	[containerd]=containerd [ctr]=containerd [runc]=runc
	[/usr/lib/cni/bridge]=containernetworking-plugins [/usr/lib/cni/host-local]=containernetworking-plugins
	[/usr/lib/cni/loopback]=containernetworking-plugins
	[ip]=iproute2 [nsenter]=util-linux [mount]=mount [flock]=util-linux [setsid]=util-linux
	[/bin/busybox]=busybox-static [openssl]=openssl [curl]=curl [iptables]=iptables
	[base64]=coreutils [timeout]=coreutils
)
missing_pkgs=()
for c in "${!PKG_OF[@]}"; do
	if [[ $c == /* ]]; then [[ -x $c ]] && continue; else command -v "$c" >/dev/null && continue; fi
	p=${PKG_OF[$c]}
	[[ " ${missing_pkgs[*]} " == *" $p "* ]] || missing_pkgs+=("$p")
done
# A dynamically linked busybox (package busybox) cannot go into a scratch image.
if [[ -x /bin/busybox ]] && ! dpkg -s busybox-static >/dev/null 2>&1; then
	[[ " ${missing_pkgs[*]} " == *" busybox-static "* ]] || missing_pkgs+=(busybox-static)
fi
if ((${#missing_pkgs[@]})); then
	[[ ${TRELLIS_KUBE_SKIP_APT:-} == 1 ]] && die "missing packages ${missing_pkgs[*]} and TRELLIS_KUBE_SKIP_APT=1"
	log "apt-get install ${missing_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed (log: $LOGS/apt.log)"; }
	timeout 900 apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >>"$LOGS/apt.log" 2>&1 ||
		{ tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install ${missing_pkgs[*]} failed (log: $LOGS/apt.log)"; }
fi
command -v go >/dev/null || die "go is not on PATH (needed to build the cluster binaries and hack/ tools)"

# ---------------------------------------------------------------- binaries
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
	if [[ ! -x "$KBIN/$b" ]]; then
		log "cluster binaries missing in $KBIN: building them (cold: about 8 min on 2 cores)"
		"$HACK/kube-build.sh"
		break
	fi
done
log "building hack tools (mkimage, pause, kubetool) into $TOOLS"
(cd "$HACK/mkimage" && CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false go build -trimpath -o "$TOOLS/mkimage" . &&
	CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false go build -trimpath -ldflags=-s -o "$TOOLS/pause" ./pause) ||
	die "building hack/mkimage failed"
(cd "$HACK/kube" && CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$TOOLS/kubetool" ./cmd/kubetool) ||
	die "building hack/kube/cmd/kubetool failed"

# ---------------------------------------------------------------- network
if [[ ! -e /var/run/netns/$NETNS ]]; then
	log "creating netns $NETNS"
	ip netns add "$NETNS"
fi
if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
	log "creating veth $VETH_HOST ($HOST_IP) <-> $NETNS/$VETH_NODE ($NODE_IP)"
	ip link del "$VETH_NODE" >/dev/null 2>&1 || true
	ip link add "$VETH_HOST" type veth peer name "$VETH_NODE"
	ip link set "$VETH_NODE" netns "$NETNS"
fi
# "ip addr replace" and "ip route replace" are idempotent (no grep of "ip addr
# show" under pipefail, whose SIGPIPE read as "missing" and re-added the address).
ip addr replace "$HOST_IP/30" dev "$VETH_HOST"
ip link set "$VETH_HOST" up
# The node reaches the pod network through the host (the CNI bridge's gateway
# lives there): kubelet probes and pod IPs work from the node's netns.
ip netns exec "$NETNS" sh -c "
	ip addr replace $NODE_IP/30 dev $VETH_NODE &&
	ip link set $VETH_NODE up &&
	ip link set lo up &&
	ip route replace $POD_CIDR via $HOST_IP dev $VETH_NODE
" || die "configuring netns $NETNS failed"
# Forward between the node's veth and the pods' bridge only (per interface; the
# bridge plugin turns forwarding on for the bridge as its gateway).
sysctl -q -w "net.ipv4.conf.$VETH_HOST.forwarding=1" || die "cannot enable forwarding on $VETH_HOST"

# ---------------------------------------------------------------- certificates and tokens
gen_cert() { # NAME CN O EXTFILE-CONTENT
	local name=$1 cn=$2 o=$3 ext=$4 subj="/CN=$2"
	[[ -s "$PKI/$name.crt" && -s "$PKI/$name.key" ]] && return 0
	[[ -n $o ]] && subj="/O=$o/CN=$cn"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
umask 077
if [[ ! -s "$PKI/ca.crt" || ! -s "$PKI/ca.key" ]]; then
	log "creating CA, certificates, service-account keys and tokens in $PKI"
	rm -f "$PKI"/*.crt "$PKI"/*.key
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
		-days 3650 -sha256 -subj "/CN=trellis-local-ca" 2>/dev/null
fi
gen_cert apiserver kube-apiserver "" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$HOST_IP,IP:$SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
gen_cert kubelet "system:node:$NODE_NAME" system:nodes "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
if [[ ! -s "$PKI/sa.key" || ! -s "$PKI/sa.pub" ]]; then
	openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
tok() { [[ -s "$PKI/$1.token" ]] || openssl rand -hex 24 >"$PKI/$1.token"; cat "$PKI/$1.token"; }
ADMIN_TOKEN=$(tok admin)
RUNNER_TOKEN=$(tok trellis-runner)
KUBELET_TOKEN=$(tok kubelet)
# token,user,uid,"group1,group2"
cat >"$PKI/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,system:masters
$RUNNER_TOKEN,trellis-runner,trellis-runner,trellis-runners
$KUBELET_TOKEN,system:node:$NODE_NAME,kubelet-$NODE_NAME,system:nodes
EOF
umask 022

write_kubeconfig() { # FILE USER TOKEN
	cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trellis-local
  cluster:
    server: https://$HOST_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@trellis-local
  context:
    cluster: trellis-local
    user: $2
    namespace: default
current-context: $2@trellis-local
EOF
	chmod 600 "$1.tmp"
	mv -f "$1.tmp" "$1"
}
write_kubeconfig "$S/admin.kubeconfig" admin "$ADMIN_TOKEN"
write_kubeconfig "$S/runner.kubeconfig" trellis-runner "$RUNNER_TOKEN"
write_kubeconfig "$S/kubelet.kubeconfig" "system:node:$NODE_NAME" "$KUBELET_TOKEN"
# The test users' kubeconfigs are meant to be read by tests run as any user.
chmod 644 "$S/admin.kubeconfig" "$S/runner.kubeconfig"

# ---------------------------------------------------------------- process helpers
# start NAME CMD...: start CMD in its own session unless NAME already runs;
# records NAME.pid and NAME.exe (the binary it must be running) in $RUN.
start() {
	local name=$1
	shift
	local pid
	if pid=$(pid_of "$name"); then
		log "$name already running (pid $pid)"
		return 0
	fi
	[[ -f "$LOGS/$name.log" ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.prev"
	log "starting $name (log: $LOGS/$name.log)"
	exe_of "$name" >"$RUN/$name.exe"
	# A non-interactive bash does not put background jobs in their own process
	# group, so setsid(1) calls setsid() and execs in place: $! is the PID of
	# the component itself (nsenter also execs in place for --net).
	setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 8>&- &
	echo $! >"$RUN/$name.pid"
	if ! wait_exec "$name" 120; then
		tail_log "$name"
		die "$name exited as it started (log: $LOGS/$name.log)"
	fi
}

# wait_until NAME SECONDS WHAT CMD...: poll CMD every 0.5 s, at most SECONDS;
# fail at once (with its log) if process NAME dies meanwhile.
wait_until() {
	local name=$1 secs=$2 what=$3
	shift 3
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if ! pid_of "$name" >/dev/null; then
			tail_log "$name"
			die "$name exited while waiting for $what (log: $LOGS/$name.log)"
		fi
		if ((SECONDS >= deadline)); then
			tail_log "$name"
			die "timed out after ${secs}s waiting for $what (log: $LOGS/$name.log)"
		fi
		sleep 0.5
	done
}

# ---------------------------------------------------------------- containerd
mkdir -p "$S/containerd" "$S/cni/net.d" "$S/cni/ipam"
# write_if_changed FILE: stdin to FILE, atomically and only if it differs
# (containerd watches the CNI conf dir and would read a half-written file).
write_if_changed() {
	cat >"$1.tmp"
	if cmp -s "$1.tmp" "$1"; then rm -f "$1.tmp"; else mv -f "$1.tmp" "$1"; fi
}
write_if_changed "$S/cni/net.d/10-trellis.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "trellis",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$S/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
write_if_changed "$S/containerd/config.toml" <<EOF
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  # This machine forbids a negative oom_score_adj: without this every pod
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # The kubelet runs in the node's netns and proxies exec/attach/port-forward
  # streams to this server, so it must listen where the node can reach it.
  stream_server_address = "$HOST_IP"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
    max_conf_num = 1
EOF
start containerd "$(exe_of containerd)" --config "$S/containerd/config.toml"
CTR=(ctr -n k8s.io --address "$CTRD_SOCK")
wait_until containerd 30 "containerd at $CTRD_SOCK" "${CTR[@]}" version

# ---------------------------------------------------------------- images
import_image() { # TARBALL
	"${CTR[@]}" images import "$1" >>"$LOGS/images.log" 2>&1 ||
		{ tail -n 5 "$LOGS/images.log" >&2; die "ctr images import $1 failed (log: $LOGS/images.log)"; }
}
mkdir -p "$S/images"
"$TOOLS/mkimage" --tag "$PAUSE_IMAGE" --out "$S/images/pause.tar" --check-static "$TOOLS/pause" \
	--file "$TOOLS/pause:/pause:0755" --entrypoint /pause 2>>"$LOGS/images.log"
bb_args=(--file /bin/busybox:/bin/busybox:0755)
for a in $(/bin/busybox --list); do
	[[ $a == busybox ]] || bb_args+=(--symlink "/bin/busybox:/bin/$a")
done
"$TOOLS/mkimage" --tag "$BUSYBOX_IMAGE" --out "$S/images/busybox.tar" --check-static /bin/busybox \
	"${bb_args[@]}" --cmd /bin/sh 2>>"$LOGS/images.log"
import_image "$S/images/pause.tar"
import_image "$S/images/busybox.tar"
log "imported $PAUSE_IMAGE and $BUSYBOX_IMAGE"

# ---------------------------------------------------------------- etcd
mkdir -p "$S/etcd"
chmod 700 "$S/etcd"
start etcd "$KBIN/etcd" --name trellis --data-dir "$S/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster "trellis=http://127.0.0.1:$ETCD_PEER_PORT" \
	--listen-metrics-urls "" --quota-backend-bytes 2147483648 --log-level warn
wait_until etcd 30 "etcd health on 127.0.0.1:$ETCD_PORT" \
	sh -c "curl -fsS --max-time 2 http://127.0.0.1:$ETCD_PORT/health | grep -q '\"health\":\"true\"'"

# ---------------------------------------------------------------- kube-apiserver
start kube-apiserver "$KBIN/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
	--bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$API_PORT" \
	--cert-dir "$S/apiserver" \
	--tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
	--client-ca-file "$PKI/ca.crt" \
	--token-auth-file "$PKI/tokens.csv" \
	--service-account-issuer https://kubernetes.default.svc \
	--service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
	--authorization-mode Node,RBAC \
	--enable-admission-plugins NodeRestriction \
	--service-cluster-ip-range "$SERVICE_CIDR" \
	--allow-privileged=true \
	--kubelet-preferred-address-types InternalIP \
	--kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "$PKI/ca.crt" \
	--profiling=false
readyz() {
	[[ $(curl -sS --max-time 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
		"https://$HOST_IP:$API_PORT/readyz") == ok ]]
}
wait_until kube-apiserver 90 "https://$HOST_IP:$API_PORT/readyz" readyz

# ---------------------------------------------------------------- controller-manager, scheduler
start kube-controller-manager "$KBIN/kube-controller-manager" \
	--kubeconfig "$S/admin.kubeconfig" \
	--authentication-kubeconfig "$S/admin.kubeconfig" --authorization-kubeconfig "$S/admin.kubeconfig" \
	--leader-elect=false --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
	--service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
	--cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
	--service-cluster-ip-range "$SERVICE_CIDR" \
	--profiling=false
start kube-scheduler "$KBIN/kube-scheduler" \
	--kubeconfig "$S/admin.kubeconfig" \
	--authentication-kubeconfig "$S/admin.kubeconfig" --authorization-kubeconfig "$S/admin.kubeconfig" \
	--leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
	--profiling=false

# ---------------------------------------------------------------- kubelet
mkdir -p "$S/kubelet" "$S/pod-logs"
cat >"$S/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
evictionHard: {}
localStorageCapacityIsolation: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: ""
podLogsDir: $S/pod-logs
clusterDomain: cluster.local
EOF
start kubelet nsenter --net=/var/run/netns/$NETNS -- "$KBIN/kubelet" \
	--config "$S/kubelet-config.yaml" --kubeconfig "$S/kubelet.kubeconfig" \
	--root-dir "$S/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" -v 1

# ---------------------------------------------------------------- the kubernetes Service for pods
# No kube-proxy: DNAT the one Service pods need (10.96.0.1:443) to the API
# server, only for traffic that comes in from the pods' bridge.
dnat=(PREROUTING -i "$CNI_BRIDGE" -d "$SERVICE_IP" -p tcp --dport 443
	-m comment --comment trellis-kube -j DNAT --to-destination "$HOST_IP:$API_PORT")
if ! iptables -t nat -C "${dnat[@]}" 2>/dev/null; then
	iptables -t nat -A "${dnat[@]}" || log "warning: could not add the DNAT rule for $SERVICE_IP:443 (pods cannot reach the API server through the Service IP)"
fi
# Node <-> pods through the host, even where the FORWARD policy is DROP (Docker sets it).
for fwd in "-i $VETH_HOST -o $CNI_BRIDGE" "-i $CNI_BRIDGE -o $VETH_HOST"; do
	# shellcheck disable=SC2086
	rule=(FORWARD $fwd -m comment --comment trellis-kube -j ACCEPT)
	iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}" ||
		log "warning: could not add the FORWARD rule ${rule[*]} (the node may not reach pod IPs)"
done

# ---------------------------------------------------------------- ready
for c in kube-controller-manager kube-scheduler; do
	pid_of "$c" >/dev/null || { tail_log "$c"; die "$c exited (log: $LOGS/$c.log)"; }
done
log "waiting for node $NODE_NAME to be Ready"
if ! "$TOOLS/kubetool" wait-ready --kubeconfig "$S/admin.kubeconfig" --node "$NODE_NAME" --timeout 150s; then
	for c in kubelet kube-controller-manager; do pid_of "$c" >/dev/null || tail_log "$c"; done
	tail_log kubelet
	die "cluster not ready (logs: $LOGS)"
fi
for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
	pid_of "$c" >/dev/null || { tail_log "$c"; die "$c exited (log: $LOGS/$c.log)"; }
done

cat >"$S/env" <<EOF
export KUBECONFIG=$S/admin.kubeconfig
export TRELLIS_KUBE_DIR=$S
export TRELLIS_KUBE_ADMIN_KUBECONFIG=$S/admin.kubeconfig
export TRELLIS_KUBE_RUNNER_KUBECONFIG=$S/runner.kubeconfig
export TRELLIS_KUBE_CONTAINERD_SOCK=$CTRD_SOCK
export TRELLIS_KUBE_BUSYBOX_IMAGE=$BUSYBOX_IMAGE
export TRELLIS_KUBE_PAUSE_IMAGE=$PAUSE_IMAGE
EOF
chmod 644 "$S/env"
log "cluster up in $((SECONDS - t0)) s: API https://$HOST_IP:$API_PORT, node $NODE_NAME ($NODE_IP), state $S"
echo "export KUBECONFIG=$S/admin.kubeconfig"
