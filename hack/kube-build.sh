#!/usr/bin/env bash
# Build the local test cluster's binaries (etcd 3.6, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet v1.34.3) from the separate
# module in hack/kube and cache them under
#   ${TRELLIS_CACHE:-$HOME/.cache/trellis}/kube-1.34.3/
# Binaries already there are not rebuilt. A cold build takes about 8 minutes
# on 2 cores; run it in the background if your shell has a time limit.
#
# Usage: hack/kube-build.sh            build what is missing
#        hack/kube-build.sh --force    rebuild all five
set -euo pipefail

KUBE_VERSION=v1.34.3
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${TRELLIS_CACHE:-${HOME:-/root}/.cache/trellis}"
BIN="$CACHE/kube-${KUBE_VERSION#v}"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)

die() { echo "kube-build: $*" >&2; exit 1; }
log() { echo "kube-build: $*" >&2; }

force=0
case "${1:-}" in
"") ;;
--force) force=1 ;;
*) die "unknown argument '$1' (usage: $0 [--force])" ;;
esac

command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$BIN"

# One build at a time per cache directory.
exec 9>"$BIN/.build.lock"
if ! flock -w 1200 9; then die "timed out after 20 min waiting for another build ($BIN/.build.lock)"; fi

missing=()
for b in "${BINARIES[@]}"; do
	if [[ $force == 1 || ! -x "$BIN/$b" ]]; then missing+=("$b"); fi
done
if [[ ${#missing[@]} == 0 ]]; then
	log "all binaries present in $BIN"
	exit 0
fi

pkgs=()
for b in "${missing[@]}"; do
	case "$b" in
	etcd) pkgs+=(go.etcd.io/etcd/server/v3) ;;
	*) pkgs+=("k8s.io/kubernetes/cmd/$b") ;;
	esac
done

tmp="$(mktemp -d "$BIN/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

ver="k8s.io/component-base/version"
ldflags="-s -w -X $ver.gitVersion=$KUBE_VERSION -X $ver.gitMajor=1 -X $ver.gitMinor=34 -X $ver.gitTreeState=clean -X $ver.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=34"

log "building ${missing[*]} into $BIN (cold: about 8 min on 2 cores)"
start=$SECONDS
# One go build for all packages so that shared packages compile once.
# -mod=readonly: the committed go.mod/go.sum are complete and must not change;
# GOWORK=off keeps any go.work of the caller out of it.
(
	cd "$HACK/kube"
	CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" \
		go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"
) || die "go build failed (see the output above)"

for b in "${missing[@]}"; do
	src="$tmp/$b"
	[[ $b == etcd ]] && src="$tmp/server" # go names the etcd main package after its directory
	[[ -x "$src" ]] || die "go build did not produce $src"
	mv -f "$src" "$BIN/$b"
done
log "built ${missing[*]} in $((SECONDS - start)) s"
