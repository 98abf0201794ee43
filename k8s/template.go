package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// LoadPodTemplate reads a pod template file (Airflow's pod_template_file) and
// decodes it into a Pod.
//
// The file holds exactly one Pod, as YAML or JSON. Decoding is strict, the
// same way the API server's fieldValidation=Strict is: an unknown or duplicated
// field is an error that names the file and the field path, for example
//
//	pod template "worker.yaml": unknown field "spec.containers[0].imagee"
//
// A document whose kind is not Pod is an error naming the kind. A document
// without kind and apiVersion is taken to be a Pod, as Airflow does; the
// returned Pod always has apiVersion v1 and kind Pod set. Nothing else is
// changed: no defaults are applied and no fields are validated (see
// ValidateWorkerTemplate and ValidatePod for that).
func LoadPodTemplate(path string) (*corev1.Pod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pod template: %w", err)
	}
	return ParsePodTemplate(path, data)
}

// ParsePodTemplate decodes a pod template held in memory with the rules of
// LoadPodTemplate. name identifies the template in error messages (a file
// name, or for example "embedded worker template").
func ParsePodTemplate(name string, data []byte) (*corev1.Pod, error) {
	pod, errs := parsePodTemplate(data)
	if len(errs) == 0 {
		return pod, nil
	}
	for i, err := range errs {
		errs[i] = fmt.Errorf("pod template %q: %w", name, err)
	}
	return nil, errors.Join(errs...)
}

// parsePodTemplate returns the decoded pod or every problem found, unprefixed.
func parsePodTemplate(data []byte) (*corev1.Pod, []error) {
	doc, err := singleDocument(data)
	if err != nil {
		return nil, []error{err}
	}

	var typeMeta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, &typeMeta); err != nil {
		return nil, []error{fmt.Errorf("not a Pod: %w", err)}
	}
	switch {
	case typeMeta.Kind != "" && typeMeta.Kind != "Pod":
		return nil, []error{fmt.Errorf("kind %q is not a Pod", typeMeta.Kind)}
	case typeMeta.APIVersion != "" && typeMeta.APIVersion != "v1":
		return nil, []error{fmt.Errorf("apiVersion %q is not v1 (a Pod is apiVersion v1)", typeMeta.APIVersion)}
	}

	pod := &corev1.Pod{}
	strictErrs, err := kjson.UnmarshalStrict(doc, pod)
	if err != nil {
		return nil, []error{err}
	}
	if len(strictErrs) > 0 {
		return nil, strictErrs
	}
	pod.APIVersion, pod.Kind = "v1", "Pod"
	return pod, nil
}

// singleDocument converts data (YAML or JSON) to JSON and makes sure it holds
// exactly one document. Duplicate keys are errors (YAMLToJSONStrict).
func singleDocument(data []byte) ([]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var (
		doc   []byte
		count int
	)
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSONStrict(raw)
		if err != nil {
			return nil, err
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue // empty document, or comments only
		}
		count++
		if doc == nil {
			doc = j
		}
	}
	switch count {
	case 0:
		return nil, errors.New("no Pod in it: the document is empty")
	case 1:
		return doc, nil
	default:
		return nil, fmt.Errorf("holds %d YAML documents; a pod template holds exactly one Pod", count)
	}
}
