// Module mkimage holds the stdlib-only image tools used by hack/kube-*.sh:
// mkimage (writes an OCI image-layout tarball) and pause (the pod sandbox
// process). A module of its own so that the project's go.mod never changes for it.
module github.com/trellisdag/trellis/hack/mkimage

go 1.22
