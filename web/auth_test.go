package web

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{tokens: true})
	trig := `{"conf":{"limit":1}}`
	// No credentials, a malformed header, a wrong token: 401 with a challenge.
	for _, c := range []struct {
		name string
		opts []reqOpt
	}{
		{"no token", nil},
		{"not bearer", []reqOpt{header("Authorization", "Basic "+operatorToken)}},
		{"wrong token", []reqOpt{bearer("not-a-valid-token-at-all")}},
		{"stale session", []reqOpt{header("Cookie", SessionCookie+"=forged")}},
	} {
		for _, path := range []string{"/api/v1/dags", "/api/v1/dags/etl/runs"} {
			method, body := "GET", any(nil)
			if strings.HasSuffix(path, "/runs") {
				method, body = "POST", trig
			}
			res := s.do(method, path, body, nil, c.opts...)
			s.expectError(res, 401, CodeUnauthorized, "")
			if res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: %s %s: no WWW-Authenticate", c.name, method, path)
			}
		}
	}
	// A viewer reads but does not act.
	var dl DAGList
	if res := s.do("GET", "/api/v1/dags", nil, &dl, bearer(viewerToken)); res.StatusCode != 200 || dl.Total != 3 {
		t.Errorf("viewer read: %d", res.StatusCode)
	}
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/dags/etl/runs", trig},
		{"PATCH", "/api/v1/dags/etl", `{"paused":true}`},
		{"POST", "/api/v1/dags/etl/runs/x/clear", `{}`},
		{"POST", "/api/v1/dags/etl/runs/x/tasks/count/mark", `{"state":"success"}`},
	} {
		eb := s.expectError(s.do(w.method, w.path, w.body, nil, bearer(viewerToken)), 403, CodeForbidden, "")
		if !strings.Contains(eb.Error.Message, "operator role") || !strings.Contains(eb.Error.Message, `"bob"`) {
			t.Errorf("viewer denial message = %q", eb.Error.Message)
		}
	}
	// An operator acts.
	run := s.trigger("etl", `{"limit":1}`, bearer(operatorToken))
	var audit AuditList
	s.do("GET", "/api/v1/audit", nil, &audit, bearer(viewerToken))
	if audit.Total != 1 || audit.Entries[0].Actor != "alice" || audit.Entries[0].Role != "operator" || audit.Entries[0].RunID != run.RunID {
		t.Errorf("audit = %+v", audit)
	}
	// Health, metrics, the OpenAPI document and the UI's shell need no token.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/", "/app.js"} {
		if res := s.do("GET", p, nil, nil); res.StatusCode != 200 {
			t.Errorf("GET %s without a token: %d", p, res.StatusCode)
		}
	}
	// Denials are logged, naming who, never the token.
	logs := s.logs.String()
	if !strings.Contains(logs, `"msg":"access denied"`) || !strings.Contains(logs, `"who":"bob"`) {
		t.Errorf("denials not logged:\n%s", logs)
	}
	for _, tok := range []string{operatorToken, viewerToken} {
		if strings.Contains(logs, tok) {
			t.Errorf("the log holds a token")
		}
	}
}

func TestSessionAndCSRF(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{tokens: true})
	// A bad token does not sign in.
	s.expectError(s.do("POST", "/api/v1/session", `{"token":"wrong-token-0123456789"}`, nil), 401, CodeUnauthorized, "")
	s.expectError(s.do("POST", "/api/v1/session", `{}`, nil), 400, CodeBadRequest, "token")
	// Login from another origin is refused (login CSRF).
	s.expectError(s.do("POST", "/api/v1/session", `{"token":"`+operatorToken+`"}`, nil, header("Origin", "https://evil.example")), 403, CodeCSRF, "")

	var sess Session
	res := s.do("POST", "/api/v1/session", `{"token":"`+operatorToken+`"}`, &sess, header("Origin", s.hs.URL))
	if res.StatusCode != 200 || sess.Name != "alice" || sess.Role != RoleOperator || sess.CSRFToken == "" || !sess.AuthRequired {
		t.Fatalf("login: %d %+v", res.StatusCode, sess)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Fatalf("session cookie = %+v", cookie)
	}
	if strings.Contains(cookie.Value, operatorToken) {
		t.Fatal("the cookie holds the token")
	}
	withCookie := header("Cookie", SessionCookie+"="+cookie.Value)
	// The session reads.
	var again Session
	if res := s.do("GET", "/api/v1/session", nil, &again, withCookie); res.StatusCode != 200 || again.CSRFToken != sess.CSRFToken {
		t.Errorf("session read: %d %+v", res.StatusCode, again)
	}
	// A write with the cookie needs the CSRF token and this origin.
	body := `{"paused":true}`
	s.expectError(s.do("PATCH", "/api/v1/dags/etl", body, nil, withCookie), 403, CodeCSRF, "")
	s.expectError(s.do("PATCH", "/api/v1/dags/etl", body, nil, withCookie, header(CSRFHeader, "guess")), 403, CodeCSRF, "")
	s.expectError(s.do("PATCH", "/api/v1/dags/etl", body, nil, withCookie, header(CSRFHeader, sess.CSRFToken),
		header("Origin", "https://evil.example")), 403, CodeCSRF, "")
	s.expectError(s.do("PATCH", "/api/v1/dags/etl", body, nil, withCookie, header(CSRFHeader, sess.CSRFToken),
		header("Sec-Fetch-Site", "cross-site")), 403, CodeCSRF, "")
	var sum DAGSummary
	if res := s.do("PATCH", "/api/v1/dags/etl", body, &sum, withCookie, header(CSRFHeader, sess.CSRFToken),
		header("Origin", s.hs.URL), header("Sec-Fetch-Site", "same-origin")); res.StatusCode != 200 || !sum.Paused {
		t.Errorf("write with CSRF token: %d %+v", res.StatusCode, sum)
	}
	// Bearer requests carry no ambient credentials and need no CSRF token.
	if res := s.do("PATCH", "/api/v1/dags/etl", `{"paused":false}`, nil, bearer(operatorToken)); res.StatusCode != 200 {
		t.Errorf("bearer write: %d", res.StatusCode)
	}
	// Signing out ends the session.
	if res := s.do("DELETE", "/api/v1/session", nil, nil, withCookie, header(CSRFHeader, sess.CSRFToken)); res.StatusCode != 200 {
		t.Errorf("logout: %d", res.StatusCode)
	}
	s.expectError(s.do("GET", "/api/v1/dags", nil, nil, withCookie), 401, CodeUnauthorized, "")
}

func TestLoopbackOnlyWithoutTokens(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	// DNS rebinding: a page of another name that resolves to 127.0.0.1.
	for _, p := range []string{"/api/v1/dags", "/"} {
		req, _ := http.NewRequest("GET", s.hs.URL+p, nil)
		req.Host = "evil.example:8080"
		res, err := s.hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Errorf("GET %s with Host evil.example: %d", p, res.StatusCode)
		}
	}
	// Cross-site writes are refused even without access control.
	s.expectError(s.do("POST", "/api/v1/dags/etl/runs", `{}`, nil, header("Origin", "http://evil.example")), 403, CodeCSRF, "")

	for _, c := range []struct {
		addr string
		ok   bool
	}{{"127.0.0.1:8080", true}, {"localhost:80", true}, {"[::1]:8080", true}, {":8080", false}, {"0.0.0.0:8080", false}, {"10.0.0.1:80", false}} {
		if got := CheckListen(c.addr, nil) == nil; got != c.ok {
			t.Errorf("CheckListen(%q, no tokens) ok = %v, want %v", c.addr, got, c.ok)
		}
	}
	toks, _ := ParseTokens("t", []byte(operatorToken+" operator"))
	if err := CheckListen(":8080", toks); err != nil {
		t.Errorf("CheckListen with tokens: %v", err)
	}
}

func TestLoadTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	os.WriteFile(file, []byte("# comment\n\n"+operatorToken+" operator alice smith\n"+viewerToken+" viewer\n"), 0o600)
	toks, err := LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := toks.lookup(operatorToken); !ok || p.Name != "alice smith" || p.Role != RoleOperator {
		t.Errorf("operator = %+v %v", p, ok)
	}
	if p, ok := toks.lookup(viewerToken); !ok || !strings.HasPrefix(p.Name, "viewer-") || strings.Contains(p.Name, viewerToken) {
		t.Errorf("unnamed viewer = %+v %v", p, ok)
	}
	// A mounted Secret: one file per key, ..data and dot files skipped.
	sec := filepath.Join(dir, "secret")
	os.MkdirAll(filepath.Join(sec, "..2024_01_01"), 0o700)
	os.WriteFile(filepath.Join(sec, "..2024_01_01", "ops"), []byte(operatorToken+" operator ops\n"), 0o600)
	os.Symlink("..2024_01_01", filepath.Join(sec, "..data"))
	os.Symlink(filepath.Join("..data", "ops"), filepath.Join(sec, "ops"))
	os.WriteFile(filepath.Join(sec, "viewers"), []byte(viewerToken+" viewer v\n"), 0o600)
	toks, err = LoadTokens(sec)
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 {
		t.Errorf("secret dir: %d tokens", toks.Len())
	}
	for _, c := range []struct{ data, want string }{
		{"short operator\n", "shorter than 16"},
		{operatorToken + " admin\n", `role "admin"`},
		{operatorToken + "\n", "want \"token role [name]\""},
		{operatorToken + " operator\n" + operatorToken + " viewer\n", "given twice"},
		{"# nothing\n", "no token"},
	} {
		_, err := ParseTokens("f", []byte(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTokens(%q) = %v; want %q", c.data, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), operatorToken) {
			t.Errorf("error %q shows the token", err)
		}
	}
}

func TestSecurityHeadersAndUI(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, p := range []string{"/", "/app.js", "/app.css", "/api/v1/dags", "/api/v1/nope", "/healthz", "/metrics"} {
		res := s.do("GET", p, nil, nil)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: security headers %v", p, h)
		}
	}
	res := s.do("GET", "/", nil, nil)
	page, _ := io.ReadAll(res.Body)
	html := string(page)
	if !strings.Contains(html, `<script src="app.js" defer></script>`) || strings.Count(html, "<script") != 1 ||
		strings.Contains(html, "style=") || strings.Contains(html, "onclick") {
		t.Errorf("index.html has inline script or style:\n%s", html)
	}
}
