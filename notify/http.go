package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/trellisdag/trellis/task"
)

// Option configures the HTTP notifiers, Webhook and Slack. Without options
// they use http.DefaultClient, add no headers of their own beyond those
// documented on each notifier, and send DefaultLogTailLimit bytes of log.
type Option func(*httpConfig)

// httpConfig is what the options set.
type httpConfig struct {
	client  *http.Client
	headers []header
	urlFile string
	logTail int
}

// header is an extra request header: a fixed value, or read from a file at
// each call (with a prefix, "Bearer ", for tokens).
type header struct {
	name, value  string
	file, prefix string
}

// WithHTTPClient sends requests with c (its Transport, proxy and TLS
// settings). Default: http.DefaultClient. The call's ctx bounds each request
// whatever c's Timeout; a nil c is the default.
func WithHTTPClient(c *http.Client) Option {
	return func(h *httpConfig) { h.client = c }
}

// WithHeader adds a request header with a fixed value; a second header of the
// same name replaces the first. Content-Type and Idempotency-Key are the
// notifier's and cannot be replaced. For secrets, prefer WithHeaderFile or
// WithBearerTokenFile: a value given here lives in the binary or its config.
func WithHeader(name, value string) Option {
	return func(h *httpConfig) { h.headers = append(h.headers, header{name: name, value: value}) }
}

// WithHeaderFile adds a request header whose value is read from the file at
// path at each call, surrounding white space trimmed, so that a mounted
// Kubernetes Secret can rotate without a restart. A missing or empty file
// fails the call (the error names the file, never its content).
func WithHeaderFile(name, path string) Option {
	return func(h *httpConfig) { h.headers = append(h.headers, header{name: name, file: path}) }
}

// WithBearerTokenFile sends "Authorization: Bearer <token>", the token read
// from the file at path at each call as WithHeaderFile does.
func WithBearerTokenFile(path string) Option {
	return func(h *httpConfig) {
		h.headers = append(h.headers, header{name: "Authorization", file: path, prefix: "Bearer "})
	}
}

// WithURLFile reads the target URL from the file at path at each call
// (surrounding white space trimmed), in place of the url argument, which may
// then be empty. A Slack incoming-webhook URL is a secret: keep it in a
// Kubernetes Secret and mount it.
func WithURLFile(path string) Option {
	return func(h *httpConfig) { h.urlFile = path }
}

// WithLogTailLimit sends at most n bytes of the event's log tail, keeping its
// end. Default (and n == 0): DefaultLogTailLimit. A negative n leaves the log
// out. Slack further cuts it to fit its message limits.
func WithLogTailLimit(n int) Option {
	return func(h *httpConfig) { h.logTail = n }
}

func newHTTPConfig(opts []Option) *httpConfig {
	h := &httpConfig{}
	for _, o := range opts {
		if o != nil {
			o(h)
		}
	}
	if h.client == nil {
		h.client = http.DefaultClient
	}
	return h
}

// HTTPError is the error of a request answered with a status other than 2xx.
// The notifier's error wraps it: errors.As finds it.
type HTTPError struct {
	// StatusCode and Status are the response's, as in http.Response.
	StatusCode int
	Status     string
	// Body is the start of the response body, at most 200 bytes.
	Body string
}

// Error names the status and quotes the start of the body.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("status %s: %q", e.Status, e.Body)
}

// maxErrorBody is how much of a response body an HTTPError keeps.
const maxErrorBody = 200

// post sends body to the target; name names the notifier in errors. Errors
// name the target's host, never its path, query or user info (a Slack
// webhook's secret is its path) nor a header's value.
func (h *httpConfig) post(ctx context.Context, name, rawURL string, e task.Event, body []byte) error {
	target := rawURL
	if h.urlFile != "" {
		s, err := readSecret(h.urlFile)
		if err != nil {
			return fmt.Errorf("notify: %s: reading the URL: %w", name, err)
		}
		target = s
	}
	if target == "" {
		return fmt.Errorf("notify: %s: no URL (give one, or WithURLFile)", name)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error quotes the URL: leave it out.
		from := ""
		if h.urlFile != "" {
			from = " in " + h.urlFile
		}
		return fmt.Errorf("notify: %s: the URL%s is not an http(s) URL", name, from)
	}
	fail := func(err error) error { return fmt.Errorf("notify: %s to %s: %w", name, u.Host, err) }

	ctx, cancel := withDeadline(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fail(errors.New("cannot make the request"))
	}
	req.Header.Set("User-Agent", "trellis-notify")
	for _, hd := range h.headers {
		v := hd.value
		if hd.file != "" {
			s, err := readSecret(hd.file)
			if err != nil {
				return fail(fmt.Errorf("reading header %s: %w", hd.name, err))
			}
			v = hd.prefix + s
		}
		req.Header.Set(hd.name, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if e.Key != "" {
		req.Header.Set("Idempotency-Key", e.Key)
	}

	resp, err := h.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL: keep what it wraps.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return fail(err)
	}
	defer func() {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return fail(&HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, Body: strings.ToValidUTF8(string(b), "\uFFFD")})
	}
	return nil
}
