// Command mkimage writes a single-layer OCI image-layout tarball that
// `ctr -n k8s.io images import` accepts, without a Docker engine and without
// pulling anything. It uses only the standard library.
//
//	mkimage --tag trellis.local/busybox:1 --out busybox.tar \
//	    --file /bin/busybox:/bin/busybox:0755 \
//	    --symlink /bin/busybox:/bin/sh \
//	    --entrypoint /bin/sh
//
// Flags that may be repeated: --file SRC:DST[:MODE] (MODE octal, default: the
// source file's mode), --symlink TARGET:LINK, --dir PATH[:MODE],
// --entrypoint ARG, --cmd ARG, --env K=V, --check-static FILE. Entries are keyed by their path in
// the image: a later entry replaces an earlier one, and --file always wins
// over --symlink for the same path. Parent directories are created 0755;
// /tmp is always present with mode 1777.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// epoch is the fixed modification time of every entry, so that the same
// inputs give the same image digest.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type entry struct {
	typ    byte // tar.TypeReg, tar.TypeSymlink, tar.TypeDir
	src    string
	target string
	mode   int64
	prio   int // file 2, symlink 1, dir 0
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	var files, links, dirs, entrypoint, cmd, env, static multi
	var tag, out, workdir, arch string
	flag.Var(&files, "file", "SRC:DST[:MODE] file to add (repeatable)")
	flag.Var(&links, "symlink", "TARGET:LINK symlink to add (repeatable)")
	flag.Var(&dirs, "dir", "PATH[:MODE] directory to add (repeatable)")
	flag.Var(&entrypoint, "entrypoint", "one entrypoint argument (repeatable, in order)")
	flag.Var(&cmd, "cmd", "one cmd argument (repeatable, in order)")
	flag.Var(&env, "env", "K=V environment variable (repeatable)")
	flag.Var(&static, "check-static", "fail unless this file is a statically linked ELF (repeatable)")
	flag.StringVar(&tag, "tag", "", "image name, e.g. trellis.local/busybox:1 (required)")
	flag.StringVar(&out, "out", "", "output tarball path (required; - for stdout)")
	flag.StringVar(&workdir, "workdir", "/", "working directory")
	flag.StringVar(&arch, "arch", runtime.GOARCH, "image architecture")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	if tag == "" || out == "" {
		return fmt.Errorf("--tag and --out are required")
	}
	refTag, err := tagOf(tag)
	if err != nil {
		return err
	}
	for _, f := range static {
		if err := checkStatic(f); err != nil {
			return err
		}
	}

	entries := map[string]*entry{}
	put := func(p string, e *entry) error {
		p = path.Clean("/" + p)
		if p == "/" {
			return fmt.Errorf("cannot add the root directory itself")
		}
		if old, ok := entries[p]; ok && old.prio > e.prio {
			return nil
		}
		entries[p] = e
		return nil
	}
	if err := put("/tmp", &entry{typ: tar.TypeDir, mode: 01777}); err != nil {
		return err
	}
	for _, d := range dirs {
		p, modeStr, _ := strings.Cut(d, ":")
		mode := int64(0o755)
		if modeStr != "" {
			if mode, err = strconv.ParseInt(modeStr, 8, 64); err != nil {
				return fmt.Errorf("--dir %q: bad mode: %v", d, err)
			}
		}
		if err := put(p, &entry{typ: tar.TypeDir, mode: mode}); err != nil {
			return err
		}
	}
	for _, l := range links {
		target, link, ok := strings.Cut(l, ":")
		if !ok || target == "" || link == "" {
			return fmt.Errorf("--symlink %q: want TARGET:LINK", l)
		}
		if err := put(link, &entry{typ: tar.TypeSymlink, target: target, mode: 0o777, prio: 1}); err != nil {
			return err
		}
	}
	for _, f := range files {
		parts := strings.Split(f, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return fmt.Errorf("--file %q: want SRC:DST[:MODE]", f)
		}
		st, err := os.Stat(parts[0])
		if err != nil {
			return fmt.Errorf("--file %q: %v", f, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("--file %q: not a regular file", f)
		}
		mode := int64(st.Mode().Perm())
		if len(parts) == 3 {
			if mode, err = strconv.ParseInt(parts[2], 8, 64); err != nil {
				return fmt.Errorf("--file %q: bad mode: %v", f, err)
			}
		}
		if err := put(parts[1], &entry{typ: tar.TypeReg, src: parts[0], mode: mode, prio: 2}); err != nil {
			return err
		}
	}
	// Parent directories.
	for p := range entries {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = &entry{typ: tar.TypeDir, mode: 0o755}
			}
		}
	}
	for p, e := range entries {
		if e.typ != tar.TypeDir {
			for d := path.Dir(p); d != "/"; d = path.Dir(d) {
				if entries[d].typ != tar.TypeDir {
					return fmt.Errorf("%s: parent %s is not a directory", p, d)
				}
			}
		}
	}

	layer, diffID, err := buildLayer(entries)
	if err != nil {
		return err
	}
	layerGz, err := gz(layer)
	if err != nil {
		return err
	}
	if len(env) == 0 {
		env = multi{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	imgConfig := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": arch,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": nilIfEmpty(entrypoint),
			"Cmd":        nilIfEmpty(cmd),
			"Env":        []string(env),
			"WorkingDir": workdir,
		},
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{diffID},
		},
		"history": []map[string]any{{
			"created":    epoch.Format(time.RFC3339),
			"created_by": "trellis hack/mkimage",
		}},
	}
	configJSON, err := json.Marshal(imgConfig)
	if err != nil {
		return err
	}
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", configJSON),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar+gzip", layerGz)},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	md := desc("application/vnd.oci.image.manifest.v1+json", manifestJSON)
	md["platform"] = map[string]string{"architecture": arch, "os": "linux"}
	md["annotations"] = map[string]string{
		// ctr import names the image from this annotation.
		"io.containerd.image.name":          tag,
		"org.opencontainers.image.ref.name": refTag,
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{md},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}

	var w io.Writer
	if out == "-" {
		w = os.Stdout
	} else {
		f, err := os.Create(out + ".tmp")
		if err != nil {
			return err
		}
		defer os.Remove(out + ".tmp")
		defer f.Close()
		w = f
	}
	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	for _, b := range [][]byte{layerGz, configJSON, manifestJSON} {
		if err := add("blobs/sha256/"+hexDigest(b), b); err != nil {
			return err
		}
	}
	if err := add("index.json", indexJSON); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && out != "-" {
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(out+".tmp", out); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "mkimage: %s manifest sha256:%s\n", tag, hexDigest(manifestJSON))
	return nil
}

// checkStatic fails unless file is an ELF executable without a program
// interpreter (a dynamically linked binary cannot run in a scratch image).
func checkStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s: not an ELF executable: %v", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0", file)
		}
	}
	return nil
}

// tagOf returns the tag part of NAME:TAG (NAME may hold a registry port).
func tagOf(ref string) (string, error) {
	if strings.Contains(ref, "@") {
		return "", fmt.Errorf("--tag %q: digests are not supported", ref)
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash || colon == len(ref)-1 {
		return "", fmt.Errorf("--tag %q: want NAME:TAG", ref)
	}
	if ref != strings.ToLower(ref[:colon])+ref[colon:] {
		return "", fmt.Errorf("--tag %q: the name must be lower case", ref)
	}
	return ref[colon+1:], nil
}

func buildLayer(entries map[string]*entry) ([]byte, string, error) {
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := entries[p]
		name := strings.TrimPrefix(p, "/")
		h := &tar.Header{Name: name, Mode: e.mode, ModTime: epoch, Typeflag: e.typ, Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeSymlink:
			h.Linkname = e.target
		case tar.TypeReg:
			data, err := os.ReadFile(e.src)
			if err != nil {
				return nil, "", err
			}
			h.Size = int64(len(data))
			if err := tw.WriteHeader(h); err != nil {
				return nil, "", err
			}
			if _, err := tw.Write(data); err != nil {
				return nil, "", err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "sha256:" + hexDigest(buf.Bytes()), nil
}

func gz(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func hexDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func desc(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": "sha256:" + hexDigest(b), "size": len(b)}
}

func nilIfEmpty(m multi) []string {
	if len(m) == 0 {
		return nil
	}
	return m
}
