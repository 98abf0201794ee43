#!/usr/bin/env bash
# Stop the local test cluster that hack/kube-up.sh started, and clean up after
# it: its pod sandboxes and containers, the processes recorded in
# $TRELLIS_KUBE_DIR/run/*.pid (and nothing else), mounts under the state dir,
# the netns, veth pair, CNI bridge and DNAT rule. Safe to run twice.
#
# Kept for the next kube-up: certificates, tokens, kubeconfigs (so their
# paths and contents stay valid) and logs. Removed: etcd data, containerd and
# kubelet state, so the next kube-up starts an empty cluster.
#
#   hack/kube-down.sh           stop and clean
#   hack/kube-down.sh --purge   also remove the whole state dir
set -euo pipefail
# shellcheck source=kube-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-lib.sh"

purge=0
case "${1:-}" in
"") ;;
--purge) purge=1 ;;
*) die "unknown argument '$1' (usage: $0 [--purge])" ;;
esac
need_root
if [[ ! -d $S ]]; then
	log "nothing to do: $S does not exist"
	exit 0
fi
exec 8>"$S/.lock"
flock -w 300 8 || die "another kube-up/kube-down holds $S/.lock (waited 5 min)"

# stop_components NAME...: SIGTERM to each recorded, live process at once,
# up to 15 s for all of them to exit, then SIGKILL and up to 5 s more.
stop_components() {
	local name pid i
	local -A live=()
	for name in "$@"; do
		# A component that kube-up started a moment ago may still be exec'ing.
		[[ -f "$RUN/$name.pid" && -f "$RUN/$name.exe" ]] && { wait_exec "$name" 30 2>/dev/null || true; }
		if pid=$(pid_of "$name"); then
			live[$name]=$pid
			kill -TERM "$pid" 2>/dev/null || true
		fi
		rm -f "$RUN/$name.pid" "$RUN/$name.exe"
	done
	for ((i = 0; i < 200 && ${#live[@]} > 0; i++)); do
		if ((i == 150)); then
			for name in "${!live[@]}"; do
				log "$name (pid ${live[$name]}) ignored SIGTERM for 15 s: SIGKILL"
				kill -KILL "${live[$name]}" 2>/dev/null || true
			done
		fi
		for name in "${!live[@]}"; do
			if ! kill -0 "${live[$name]}" 2>/dev/null; then
				log "stopped $name (pid ${live[$name]})"
				unset "live[$name]"
			fi
		done
		((${#live[@]} == 0)) || sleep 0.1
	done
	for name in "${!live[@]}"; do
		echo "${0##*/}: warning: $name (pid ${live[$name]}) still alive after SIGKILL" >&2
	done
	return 0
}

# shim_pids: containerd shims serving our containerd (their command line names
# our socket), i.e. the ones our containerd started.
shim_pids() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ $cmd == *containerd-shim* && $cmd == *"-address $CTRD_SOCK "* ]] && echo "${p#/proc/}"
	done
	return 0
}

# descendants PID: all descendants of PID, deepest last.
descendants() {
	local c
	for c in $(cat "/proc/$1/task/"*/children 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# 1. The kubelet first, so that it does not restart what we remove.
stop_components kubelet

# 2. Pod sandboxes and containers, through the CRI (tears down CNI and mounts).
#    If containerd is gone but its shims still run, start it again to do this.
if ! pid_of containerd >/dev/null && [[ -n $(shim_pids) && -f "$S/containerd/config.toml" ]]; then
	log "containerd is not running but its shims are: starting it to clean up"
	exe_of containerd >"$RUN/containerd.exe"
	setsid "$(exe_of containerd)" --config "$S/containerd/config.toml" </dev/null >>"$LOGS/containerd.log" 2>&1 8>&- &
	echo $! >"$RUN/containerd.pid"
	for ((i = 0; i < 60; i++)); do
		ctr --address "$CTRD_SOCK" version >/dev/null 2>&1 && break
		sleep 0.5
	done
fi
if pid_of containerd >/dev/null; then
	if [[ -x "$TOOLS/kubetool" ]]; then
		"$TOOLS/kubetool" cri-clean --socket "$CTRD_SOCK" --timeout 90s ||
			echo "${0##*/}: warning: CRI cleanup incomplete; falling back to ctr" >&2
	fi
	# Anything left (or no kubetool): kill tasks and remove containers with ctr.
	CTR=(timeout 30 ctr -n k8s.io --address "$CTRD_SOCK")
	for id in $("${CTR[@]}" tasks ls -q 2>/dev/null || true); do
		"${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
	done
	for id in $("${CTR[@]}" containers ls -q 2>/dev/null || true); do
		"${CTR[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
		"${CTR[@]}" containers delete "$id" >/dev/null 2>&1 || true
	done
fi

# 3. The rest of the components: the control plane together, then etcd, then containerd.
stop_components kube-scheduler kube-controller-manager kube-apiserver
stop_components etcd
stop_components containerd

# 4. Shims (and their containers) that outlived containerd.
for shim in $(shim_pids); do
	for p in $(descendants "$shim") "$shim"; do
		log "killing leftover pid $p of our containerd shim $shim"
		kill -KILL "$p" 2>/dev/null || true
	done
done

# 5. Mounts under the state dir, deepest first.
unmount_all() {
	local m
	# Field 5 of mountinfo is the mount point (octal escapes for spaces; our paths have none).
	for m in $(awk -v s="$S/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r -u); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "${0##*/}: warning: cannot unmount $m" >&2
	done
}
unmount_all
unmount_all # a second pass for stacked mounts

# 6. Network: DNAT rule, CNI bridge, veth pair, netns.
if command -v iptables >/dev/null; then
	dnat=(PREROUTING -i "$CNI_BRIDGE" -d "$SERVICE_IP" -p tcp --dport 443
		-m comment --comment trellis-kube -j DNAT --to-destination "$HOST_IP:$API_PORT")
	for ((i = 0; i < 10; i++)); do
		iptables -t nat -C "${dnat[@]}" 2>/dev/null || break
		iptables -t nat -D "${dnat[@]}"
	done
	for fwd in "-i $VETH_HOST -o $CNI_BRIDGE" "-i $CNI_BRIDGE -o $VETH_HOST"; do
		# shellcheck disable=SC2086
		rule=(FORWARD $fwd -m comment --comment trellis-kube -j ACCEPT)
		for ((i = 0; i < 10; i++)); do
			iptables -C "${rule[@]}" 2>/dev/null || break
			iptables -D "${rule[@]}"
		done
	done
fi
ip link del "$CNI_BRIDGE" >/dev/null 2>&1 || true
ip link del "$VETH_HOST" >/dev/null 2>&1 || true
if [[ -e /var/run/netns/$NETNS ]]; then
	ip netns del "$NETNS" || echo "${0##*/}: warning: cannot delete netns $NETNS" >&2
fi

# 7. Runtime state. Never rm through a mount point that is still there.
if awk -v s="$S/" 'index($5, s) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
	die "mounts remain under $S (see /proc/self/mountinfo); not removing its state"
fi
rm -rf --one-file-system "$S/etcd" "$S/kubelet" "$S/containerd/root" "$S/containerd/state" \
	"$S/containerd/opt" "$S/pod-logs" "$S/cni/ipam" "$S/apiserver" "$S/images" "$S/env"
rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
if ((purge)); then
	rm -rf --one-file-system "$S"
	log "cluster down; removed $S"
else
	log "cluster down; kept certificates, kubeconfigs and logs in $S"
fi
