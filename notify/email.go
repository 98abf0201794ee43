package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"slices"
	"strings"
	"time"

	"github.com/trellisdag/trellis/task"
)

// SMTPConfig says where and how Email sends. Addr, From and To are required;
// the zero value of every other field is a sane default.
type SMTPConfig struct {
	// Addr is the server's host:port, e.g. "smtp.example.com:587".
	Addr string
	// From is the sender, as in a From header: "trellis@example.com" or
	// "Trellis <trellis@example.com>".
	From string
	// To are the recipients, each as in a To header; at least one.
	To []string

	// Username, when set, authenticates with AUTH PLAIN, the password read
	// from PasswordFile. net/smtp sends credentials only over TLS or to a
	// server on localhost; elsewhere, a server without STARTTLS fails the send.
	Username string
	// PasswordFile holds the password; it is read at each send (surrounding
	// white space trimmed) so that a mounted Kubernetes Secret can rotate.
	PasswordFile string

	// LocalName is the host name sent with EHLO. Default: "localhost".
	LocalName string
	// STARTTLS is used whenever the server offers it. RequireTLS fails a send
	// to a server that does not, instead of sending in the clear. Default:
	// false.
	RequireTLS bool
	// ImplicitTLS speaks TLS from the first byte (SMTPS, usually port 465)
	// instead of STARTTLS. Default: false.
	ImplicitTLS bool
	// TLSConfig is used for STARTTLS and ImplicitTLS. Default: the system's
	// roots, the server name being Addr's host.
	TLSConfig *tls.Config

	// SubjectPrefix starts every subject. Default: "[trellis]".
	SubjectPrefix string
	// LogTailLimit is how many bytes of the log's end the message holds.
	// Default (0): DefaultLogTailLimit; negative: none.
	LogTailLimit int
}

// Email returns a callback that mails the event over SMTP (net/smtp): a
// plain-text message with
//
//	Subject: [trellis] orders_etl.load failed
//	Message-ID: <trellis.<32 hex digits>@<From's domain>>
//	Auto-Submitted: auto-generated
//	X-Trellis-Event-Key: <the event's Key>
//
// whose body sums the event up, lists its fields (DAG, task, run, try, state,
// logical date, data interval, link), then the error and the end of the log.
// The Message-ID is derived from the event's Key: every delivery of one event
// (they are at least once) has the same, so mail clients and archives can
// recognize a repeat.
//
// The ctx bounds the whole exchange: dial, TLS, commands and data. A bad cfg
// (no Addr port, an unparsable address, no recipient) fails every call with
// the same error. Errors name the server's address, never the password.
func Email(cfg SMTPConfig) task.Callback {
	m, err := newMailer(cfg)
	return func(ctx context.Context, e task.Event) error {
		if err != nil {
			return err
		}
		return m.send(ctx, e)
	}
}

type mailer struct {
	cfg  SMTPConfig
	host string
	from *mail.Address
	to   []*mail.Address
}

func newMailer(cfg SMTPConfig) (*mailer, error) {
	cfg.To = slices.Clone(cfg.To)
	if cfg.TLSConfig != nil {
		cfg.TLSConfig = cfg.TLSConfig.Clone()
	}
	m := &mailer{cfg: cfg}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("notify: email: Addr %q is not host:port", cfg.Addr)
	}
	m.host = host
	if m.from, err = mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("notify: email: From %q: %w", cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return nil, errors.New("notify: email: no recipient (SMTPConfig.To)")
	}
	for _, s := range cfg.To {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("notify: email: To %q: %w", s, err)
		}
		m.to = append(m.to, a)
	}
	return m, nil
}

func (m *mailer) tlsConfig() *tls.Config {
	if m.cfg.TLSConfig != nil {
		c := m.cfg.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = m.host
		}
		return c
	}
	return &tls.Config{ServerName: m.host}
}

func (m *mailer) send(ctx context.Context, e task.Event) error {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	fail := func(step string, err error) error {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return fmt.Errorf("notify: email via %s: %s: %w", m.cfg.Addr, step, err)
	}
	var password string
	if m.cfg.Username != "" && m.cfg.PasswordFile != "" {
		p, err := readSecret(m.cfg.PasswordFile)
		if err != nil {
			return fail("reading the password", err)
		}
		password = p
	}
	msg := m.message(e)

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fail("dial", err)
	}
	defer conn.Close()
	// Closing the connection when ctx ends unblocks whatever step waits.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if m.cfg.ImplicitTLS {
		conn = tls.Client(conn, m.tlsConfig())
	}

	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	local := m.cfg.LocalName
	if local == "" {
		local = "localhost"
	}
	if err := c.Hello(local); err != nil {
		return fail("EHLO", err)
	}
	if !m.cfg.ImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConfig()); err != nil {
				return fail("STARTTLS", err)
			}
		} else if m.cfg.RequireTLS {
			return fail("STARTTLS", errors.New("not offered by the server, and RequireTLS is set"))
		}
	}
	if m.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fail("AUTH", errors.New("not offered by the server"))
		}
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, password, m.host)); err != nil {
			return fail("AUTH", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fail("MAIL FROM", err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to.Address); err != nil {
			return fail("RCPT TO", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("DATA", err)
	}
	// The server took the message: a failed QUIT does not undo that.
	_ = c.Quit()
	return nil
}

// message is the whole RFC 5322 message, CRLF line ends, body in
// quoted-printable.
func (m *mailer) message(e task.Event) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	prefix := m.cfg.SubjectPrefix
	if prefix == "" {
		prefix = "[trellis]"
	}
	subj, _ := head(oneLine(prefix+" "+subject(e)), 250)
	date := e.At
	if date.IsZero() {
		date = time.Now()
	}
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = a.String()
	}
	header("From", m.from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subj))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", messageID(e.Key, m.from.Address))
	header("Auto-Submitted", "auto-generated")
	if k := e.Key; k != "" && len(k) <= 200 && printableASCII(k) {
		header("X-Trellis-Event-Key", k)
	}
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(mailText(e, logTailLimit(m.cfg.LogTailLimit))))
	_ = qp.Close()
	return b.Bytes()
}

// mailText is the plain-text body: summary, fields, error, log tail.
func mailText(e task.Event, logLimit int) string {
	var b strings.Builder
	b.WriteString(summary(e) + "\n\n")
	fs := fields(e)
	width := 0
	for _, f := range fs {
		width = max(width, len(f.label))
	}
	for _, f := range fs {
		fmt.Fprintf(&b, "%-*s %s\n", width+1, f.label+":", f.value)
	}
	if e.Error != "" {
		b.WriteString("\nError:\n" + cutError(e.Error) + "\n")
	}
	if t, cut := tail(e.LogTail, logLimit); t != "" {
		b.WriteString("\nLog tail:\n")
		if cut {
			b.WriteString("…\n")
		}
		b.WriteString(t)
		if !strings.HasSuffix(t, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// messageID derives a message's Message-ID from its event's key, so that
// every delivery of one event has the same; the key is hashed, as it may hold
// characters a Message-ID may not. Without a key it is random.
func messageID(key, from string) string {
	var sum [32]byte
	if key != "" {
		sum = sha256.Sum256([]byte("trellis event\x00" + key))
	} else {
		_, _ = rand.Read(sum[:])
	}
	domain := "trellis.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && isDomain(from[i+1:]) {
		domain = from[i+1:]
	}
	return "<trellis." + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
