package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/internal/store"
)

// TestLoginBodyLimit: the public login route reads at most MaxBodyBytes of a
// request body (default 64 KiB): one byte more is a 413 whose message names
// the limit, and a body of exactly the limit is read (here: a wrong token, 401).
func TestLoginBodyLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit int64 // Config.MaxBodyBytes
		want  int64 // the limit in force
	}{
		{"default", 0, 64 << 10},
		{"configured", 1000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "trellis.db"), store.Options{Sync: store.SyncNormal})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			toks, err := ParseTokens("test", []byte(operatorToken+" operator alice\n"))
			if err != nil {
				t.Fatal(err)
			}
			srv, err := New(Config{Store: st, Tokens: toks, MaxBodyBytes: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			srv.SetReady(nil)
			hs := httptest.NewServer(srv.Handler())
			t.Cleanup(hs.Close)

			// {"token":"xx…x"} of exactly n bytes.
			body := func(n int64) string {
				return `{"token":"` + strings.Repeat("x", int(n)-len(`{"token":""}`)) + `"}`
			}
			login := func(b string) (int, string) {
				t.Helper()
				res, err := hs.Client().Post(hs.URL+"/api/v1/session", "application/json", strings.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				out, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				return res.StatusCode, string(out)
			}
			code, out := login(body(tc.want + 1))
			if msg := fmt.Sprintf("request body is larger than %d bytes", tc.want); code != http.StatusRequestEntityTooLarge ||
				!strings.Contains(out, `"code":"`+CodeTooLarge+`"`) || !strings.Contains(out, msg) {
				t.Errorf("login with %d bytes = %d %s, want 413 %q", tc.want+1, code, out, msg)
			}
			if code, out := login(body(tc.want)); code != http.StatusUnauthorized {
				t.Errorf("login with %d bytes (the limit) = %d %s, want 401 (read, wrong token)", tc.want, code, out)
			}
		})
	}
}
