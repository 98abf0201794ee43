#!/usr/bin/env bash
# Build a container image from a static Go binary, with busybox as /bin/sh
# (and its applets in /bin) so that Bash-style tasks run inside the pod, and
# import it into the local cluster's containerd. Nothing is pulled; no Docker.
#
#   hack/kube-image.sh NAME:TAG BINARY [SRC:DST[:MODE] ...]
#
# BINARY is either a statically linked executable, or a Go package to build
# with CGO_ENABLED=0: a directory (built there, so in its own module) or an
# import path or pattern resolved in the current directory's module. It goes to /usr/local/bin/<basename>
# and is the image's entrypoint. Extra SRC:DST[:MODE] files are added as given.
# Pods must use imagePullPolicy: Never (or IfNotPresent) with the tag.
#
# Environment: TRELLIS_KUBE_DIR as for kube-up.sh; TRELLIS_IMAGE_OUT=FILE
# also keeps the tarball there; TRELLIS_IMAGE_NO_IMPORT=1 only builds it.
set -euo pipefail
# shellcheck source=kube-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-lib.sh"

(($# >= 2)) || die "usage: $0 NAME:TAG BINARY [SRC:DST[:MODE] ...]"
tag=$1
bin=$2
shift 2
[[ $tag == *:* && $tag != *@* ]] || die "image name '$tag' must be NAME:TAG"
[[ -x /bin/busybox ]] || die "/bin/busybox missing: run hack/kube-up.sh first (it installs busybox-static)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ -f $bin ]]; then
	name=$(basename "$bin")
	exe=$bin
else
	name=$(basename "$(cd "$bin" 2>/dev/null && pwd || echo "$bin")")
	exe="$tmp/$name"
	log "go build $bin (CGO_ENABLED=0)"
	if [[ -d $bin ]]; then # build it in its own directory, so within its own module
		(cd "$bin" && CGO_ENABLED=0 go build -trimpath -o "$exe" .) || die "go build $bin failed"
	else
		CGO_ENABLED=0 go build -trimpath -o "$exe" "$bin" || die "go build $bin failed"
	fi
fi

mkimage="$TOOLS/mkimage"
if [[ ! -x $mkimage ]]; then
	mkimage="$tmp/mkimage"
	(cd "$HACK/mkimage" && CGO_ENABLED=0 GOWORK=off go build -o "$mkimage" .) || die "building hack/mkimage failed"
fi

args=(--tag "$tag" --out "$tmp/image.tar" --check-static "$exe" --check-static /bin/busybox
	--file /bin/busybox:/bin/busybox:0755)
for a in $(/bin/busybox --list); do
	[[ $a == busybox ]] || args+=(--symlink "/bin/busybox:/bin/$a")
done
args+=(--file "$exe:/usr/local/bin/$name:0755" --entrypoint "/usr/local/bin/$name")
for extra in "$@"; do
	args+=(--file "$extra")
done
"$mkimage" "${args[@]}" || die "mkimage failed for $tag"
if [[ -n ${TRELLIS_IMAGE_OUT:-} ]]; then
	cp "$tmp/image.tar" "$TRELLIS_IMAGE_OUT"
fi
if [[ ${TRELLIS_IMAGE_NO_IMPORT:-} == 1 ]]; then
	log "built $tag (not imported)"
	exit 0
fi
[[ -S $CTRD_SOCK ]] || die "no containerd socket at $CTRD_SOCK: run hack/kube-up.sh first"
timeout 120 ctr -n k8s.io --address "$CTRD_SOCK" images import "$tmp/image.tar" >"$tmp/import.log" 2>&1 ||
	{ cat "$tmp/import.log" >&2; die "ctr images import of $tag failed"; }
log "imported $tag (entrypoint /usr/local/bin/$name; /bin/sh is busybox); use imagePullPolicy: Never"
