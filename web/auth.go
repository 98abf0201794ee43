package web

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Role is what a token may do.
type Role string

// Roles.
const (
	RoleViewer   Role = "viewer"   // reads everything, changes nothing
	RoleOperator Role = "operator" // also triggers, clears, marks and pauses
)

// Principal is who a request comes from.
type Principal struct {
	Name string
	Role Role
	sess *session // set when authenticated by the session cookie
}

// Tokens are the bearer tokens that may use the server. Only their SHA-256
// hashes are kept.
type Tokens struct {
	byHash map[[32]byte]Principal
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// MinTokenLength is the shortest token accepted.
const MinTokenLength = 16

// LoadTokens reads tokens from a file, or from every regular file of a directory
// (a Kubernetes Secret mounted as a volume; names starting with a dot, such as
// the Secret's ..data, are skipped). Each non-empty line that is not a comment
// (#) is "token role [name]"; role is viewer or operator. Errors name the file and
// line, never the token.
func LoadTokens(path string) (*Tokens, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	t := &Tokens{byHash: map[[32]byte]Principal{}}
	files := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		files = files[:0]
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(path, e.Name())
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() { // follows the Secret's symlinks
				files = append(files, p)
			}
		}
		sort.Strings(files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		if err := t.parse(f, b); err != nil {
			return nil, err
		}
	}
	if len(t.byHash) == 0 {
		return nil, fmt.Errorf("tokens: %s holds no token (lines: token role [name])", path)
	}
	return t, nil
}

// ParseTokens reads tokens from data in LoadTokens's format; name is used in
// error messages.
func ParseTokens(name string, data []byte) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]Principal{}}
	if err := t.parse(name, data); err != nil {
		return nil, err
	}
	if len(t.byHash) == 0 {
		return nil, fmt.Errorf("tokens: %s holds no token", name)
	}
	return t, nil
}

func (t *Tokens) parse(name string, data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return fmt.Errorf("tokens: %s:%d: want \"token role [name]\"", name, n)
		}
		tok, role := f[0], Role(f[1])
		if len(tok) < MinTokenLength {
			return fmt.Errorf("tokens: %s:%d: token is shorter than %d characters", name, n, MinTokenLength)
		}
		if role != RoleViewer && role != RoleOperator {
			return fmt.Errorf("tokens: %s:%d: role %q: want viewer or operator", name, n, f[1])
		}
		h := sha256.Sum256([]byte(tok))
		who := strings.Join(f[2:], " ")
		if who == "" {
			who = fmt.Sprintf("%s-%s", role, hex.EncodeToString(h[:3]))
		}
		if _, dup := t.byHash[h]; dup {
			return fmt.Errorf("tokens: %s:%d: token given twice", name, n)
		}
		t.byHash[h] = Principal{Name: who, Role: role}
	}
	return sc.Err()
}

// lookup finds a token's principal. The map is keyed by the token's hash, so the
// lookup does not compare secret bytes.
func (t *Tokens) lookup(token string) (Principal, bool) {
	p, ok := t.byHash[sha256.Sum256([]byte(token))]
	return p, ok
}

// session is a signed-in UI user.
type session struct {
	id      string
	csrf    string
	p       Principal
	expires time.Time
}

// SessionCookie is the name of the UI's session cookie.
const SessionCookie = "trellis_session"

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics itself if it cannot read)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return string(h[:])
}

var anonymous = Principal{Name: "anonymous", Role: RoleOperator}

// authenticate returns the request's principal: from a bearer token, else from
// the session cookie. With access control off everyone is an anonymous operator.
func (s *Server) authenticate(r *http.Request) (*Principal, *Error) {
	if s.cfg.Tokens == nil {
		p := anonymous
		return &p, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, errorf(http.StatusUnauthorized, CodeUnauthorized, "Authorization header: want \"Bearer <token>\"")
		}
		p, ok := s.cfg.Tokens.lookup(strings.TrimSpace(tok))
		if !ok {
			return nil, errorf(http.StatusUnauthorized, CodeUnauthorized, "the bearer token is not valid")
		}
		return &p, nil
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		s.sessMu.Lock()
		sess := s.sessions[sessionKey(c.Value)]
		if sess != nil && s.now().After(sess.expires) {
			delete(s.sessions, sessionKey(c.Value))
			sess = nil
		}
		s.sessMu.Unlock()
		if sess == nil {
			return nil, errorf(http.StatusUnauthorized, CodeUnauthorized, "the session has expired or is not valid; sign in again")
		}
		p := sess.p
		p.sess = sess
		return &p, nil
	}
	return nil, errorf(http.StatusUnauthorized, CodeUnauthorized,
		"sign in: send \"Authorization: Bearer <token>\", or sign in with a token in the UI")
}

// checkCSRF protects state-changing requests. A cross-site page can make a
// browser send a request with its cookies, but (without CORS, which this server
// never grants) it cannot read the session's CSRF token nor send a JSON content
// type or a custom header. So a state-changing request must come from this
// origin (Origin and Sec-Fetch-Site, when the browser sends them), and one made
// with the session cookie must carry the session's CSRF token in X-CSRF-Token.
// Bearer-token requests carry no ambient credentials and need no token.
func (s *Server) checkCSRF(r *http.Request, p *Principal) *Error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errorf(http.StatusForbidden, CodeCSRF, "cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errorf(http.StatusForbidden, CodeCSRF, "cross-origin request refused (Origin %s is not this server)", o)
		}
	}
	if p != nil && p.sess != nil {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.sess.csrf)) != 1 {
			return errorf(http.StatusForbidden, CodeCSRF, "missing or wrong %s header for this session", CSRFHeader)
		}
	}
	return nil
}

func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) sessionOf(p *Principal) Session {
	out := Session{Name: p.Name, Role: p.Role, AuthRequired: s.cfg.Tokens != nil}
	if p.sess != nil {
		out.CSRFToken = p.sess.csrf
	}
	return out
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, p *Principal) error {
	writeJSON(w, http.StatusOK, s.sessionOf(p))
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	if s.cfg.Tokens == nil {
		p := anonymous
		writeJSON(w, http.StatusOK, s.sessionOf(&p))
		return nil
	}
	var req LoginRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return badParam("token", "token is required")
	}
	p, ok := s.cfg.Tokens.lookup(strings.TrimSpace(req.Token))
	if !ok {
		e := errorf(http.StatusUnauthorized, CodeUnauthorized, "the token is not valid")
		s.deny(w, r, nil, e)
		return nil
	}
	sess := &session{id: randomString(), csrf: randomString(), p: p, expires: s.now().Add(s.cfg.SessionTTL)}
	s.sessMu.Lock()
	for k, old := range s.sessions { // drop expired sessions
		if s.now().After(old.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[sessionKey(sess.id)] = sess
	s.sessMu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sess.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
		MaxAge: int(s.cfg.SessionTTL.Seconds())})
	s.log.Info("signed in", "who", p.Name, "role", p.Role, "remote", r.RemoteAddr)
	pp := p
	pp.sess = sess
	writeJSON(w, http.StatusOK, s.sessionOf(&pp))
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sessMu.Lock()
		delete(s.sessions, sessionKey(c.Value))
		s.sessMu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, Session{AuthRequired: s.cfg.Tokens != nil})
	return nil
}
