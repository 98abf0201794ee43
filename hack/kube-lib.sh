# Shared settings and helpers of hack/kube-*.sh. Source it; do not run it.
# shellcheck shell=bash disable=SC2034

KUBE_VERSION=v1.34.3
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${TRELLIS_CACHE:-${HOME:-/root}/.cache/trellis}"
KBIN="$CACHE/kube-${KUBE_VERSION#v}"

S="${TRELLIS_KUBE_DIR:-/tmp/trellis-kube}"
PKI="$S/pki"
RUN="$S/run"    # NAME.pid and NAME.exe of every process kube-up.sh started
LOGS="$S/logs"
TOOLS="$S/bin" # mkimage, pause, kubetool (built from hack/ at every kube-up)
CTRD_SOCK="$S/containerd/containerd.sock"

# Network: the node lives in its own network namespace, joined to the host by
# a veth pair. The API server listens on the host end, the kubelet on the node end.
NETNS=trellis-node
VETH_HOST=trellis-h
VETH_NODE=trellis-n
HOST_IP=10.251.0.1
NODE_IP=10.251.0.2
CNI_BRIDGE=trellis0
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1 # the "kubernetes" Service; DNATed to the API server for pods
NODE_NAME=node1

API_PORT="${TRELLIS_KUBE_API_PORT:-6443}"
ETCD_PORT="${TRELLIS_KUBE_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${TRELLIS_KUBE_ETCD_PEER_PORT:-23791}"
SCHED_PORT="${TRELLIS_KUBE_SCHEDULER_PORT:-10259}"
KCM_PORT="${TRELLIS_KUBE_CONTROLLER_MANAGER_PORT:-10257}"
KUBELET_PORT=10250 # inside the node's netns

PAUSE_IMAGE=trellis.local/pause:1
BUSYBOX_IMAGE=trellis.local/busybox:1

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() {
	echo "${0##*/}: error: $*" >&2
	exit 1
}

need_root() { [[ $(id -u) == 0 ]] || die "must run as root (it creates a network namespace, mounts and cgroups)"; }

# exe_of NAME: the binary a component runs as.
exe_of() {
	case "$1" in
	containerd) command -v containerd || echo /usr/bin/containerd ;;
	*) echo "$KBIN/$1" ;;
	esac
}

# pid_of NAME: prints the recorded PID and succeeds only if that process is
# alive and still runs the binary recorded at start (guards against PID reuse).
pid_of() {
	local name=$1 pid exe want
	[[ -f "$RUN/$name.pid" && -f "$RUN/$name.exe" ]] || return 1
	pid=$(<"$RUN/$name.pid")
	want=$(<"$RUN/$name.exe")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[[ $exe == "$want" || $exe == "$want (deleted)" ]] || return 1
	echo "$pid"
}

# wait_exec NAME SECONDS: after start, wait until the recorded process runs
# the component's binary. setsid(1) and nsenter(1) exec in place, but on a
# loaded machine the PID can still be the forked shell, setsid or nsenter for
# a while, so only a process that is gone (or a zombie) counts as dead.
wait_exec() {
	local name=$1 secs=$2 pid state
	pid=$(<"$RUN/$name.pid")
	local deadline=$((SECONDS + secs))
	until pid_of "$name" >/dev/null; do
		state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || state=
		if [[ -z $state || $state == Z ]]; then
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "warning: $name (pid $pid) has not exec'd $(<"$RUN/$name.exe") after ${secs}s (it runs $(readlink "/proc/$pid/exe" 2>/dev/null))"
			return 1
		fi
		sleep 0.1
	done
}

# tail_log NAME: the end of a component's log, for error messages.
tail_log() {
	[[ -f "$LOGS/$1.log" ]] || return 0
	echo "---- last lines of $LOGS/$1.log ----" >&2
	tail -n 25 "$LOGS/$1.log" >&2
	echo "----" >&2
}
