package web

import (
	"bytes"
	"net/http"
	"testing"
)

type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func newRecorder() *recorder { return &recorder{h: http.Header{}} }

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(c int) { r.code = c }

func mustReq(t *testing.T, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", "http://127.0.0.1"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
