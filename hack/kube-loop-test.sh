#!/usr/bin/env bash
# Proves that hack/kube-up.sh and hack/kube-down.sh do not depend on luck: N
# times (default 10) kube-up then kube-down while a busy loop keeps every core
# busy, then kube-up, kube-up again while up (it must only check), and
# kube-down. Any failure stops the loop with the failing script's output.
#
#   sudo hack/kube-loop-test.sh [N]      (make cluster-loop)
#
# The load is a bounded busy loop per core that this script starts and stops
# itself (each also ends on its own after 1 hour).
set -euo pipefail
# shellcheck source=kube-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-lib.sh"

n=${1:-10}
[[ $n =~ ^[0-9]+$ && $n -ge 1 ]] || die "usage: $0 [N>=1]"
need_root
"$HACK/kube-build.sh" # the binaries, unloaded: this tests start-up, not the compiler

load=()
stop_load() {
	local p
	for p in "${load[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${load[@]}"; do wait "$p" 2>/dev/null || true; done
	load=()
}
trap stop_load EXIT
for ((c = 0; c < $(nproc); c++)); do
	timeout 3600 bash -c 'while :; do :; done' &
	load+=($!)
done
log "loading $(nproc) cores with busy loops (pids ${load[*]})"

run() { # WHAT CMD...: run CMD, its output kept for a failure
	local what=$1 out t=$SECONDS
	shift
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "$what failed"
	fi
	log "$what ok in $((SECONDS - t)) s"
}
# Every loaded kube-up below starts from nothing.
run "kube-down (before the loop)" "$HACK/kube-down.sh"
for ((i = 1; i <= n; i++)); do
	run "[$i/$n] kube-up (loaded)" "$HACK/kube-up.sh"
	run "[$i/$n] kube-down (loaded)" "$HACK/kube-down.sh"
done
run "kube-up (loaded)" "$HACK/kube-up.sh"
out=$("$HACK/kube-up.sh" 2>&1) || { printf '%s\n' "$out" >&2; die "kube-up while up failed"; }
[[ $out == *"already up and ready"* ]] || { printf '%s\n' "$out" >&2; die "kube-up while up did more than check"; }
log "kube-up while up: only checked"
run "kube-down" "$HACK/kube-down.sh"
stop_load
log "kube-up/kube-down: $n loaded cycles, a second kube-up while up, and kube-down: all passed"
