package termination

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxMessage is the kubelet's limit on a termination message.
const MaxMessage = 4096

// Statuses.
const (
	Succeeded = "success"
	Failed    = "failed"
	Skipped   = "skipped"
)

// Message is the end of a try as the worker reports it.
type Message struct {
	Status   string          `json:"status"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	NoRetry  bool            `json:"noRetry,omitempty"`
	ExitCode int             `json:"exitCode,omitempty"`
	// Framed is the size of the result written to stdout in a frame
	// because it did not fit; Result is then empty.
	Framed int `json:"framed,omitempty"`
	// SHA256 is the hex digest of a framed result.
	SHA256 string `json:"sha256,omitempty"`
}

// Frame markers on stdout.
const (
	frameBegin = "##trellis-result-begin "
	frameEnd   = "##trellis-result-end"
	lineChars  = 3072 // base64 characters per line: well under the runtime's 16 KiB line split
)

// Encode returns the termination message and, for a result that does not
// fit in it, the frame to print on stdout before exiting. An error message
// that does not fit is shortened.
func (m Message) Encode() (body, frame []byte) {
	body, _ = json.Marshal(m)
	if len(body) <= MaxMessage {
		return body, nil
	}
	if len(m.Result) > 0 {
		sum := sha256.Sum256(m.Result)
		var f bytes.Buffer
		enc := base64.StdEncoding.EncodeToString(m.Result)
		fmt.Fprintf(&f, "\n%s%d %s\n", frameBegin, len(m.Result), hex.EncodeToString(sum[:]))
		for len(enc) > 0 {
			n := min(lineChars, len(enc))
			f.WriteString(enc[:n])
			f.WriteByte('\n')
			enc = enc[n:]
		}
		f.WriteString(frameEnd + "\n")
		m.Framed, m.SHA256, m.Result = len(m.Result), hex.EncodeToString(sum[:]), nil
		frame = f.Bytes()
		body, _ = json.Marshal(m)
	}
	for len(body) > MaxMessage && len(m.Error) > 0 {
		cut := max(0, len(m.Error)-(len(body)-MaxMessage)-8)
		m.Error = strings.ToValidUTF8(m.Error[:cut], "") + " …"
		body, _ = json.Marshal(m)
	}
	return body, frame
}

// Decode parses a termination message; ok is false when it is not one (the
// process died before writing it, or the pod is not a worker).
func Decode(s string) (m Message, ok bool) {
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return Message{}, false
	}
	switch m.Status {
	case Succeeded, Failed, Skipped:
		return m, true
	}
	return Message{}, false
}

// ErrNoFrame is returned by Extract when the log holds no complete frame.
var ErrNoFrame = errors.New("no result frame in the log")

// Extract returns the framed result of m from a saved log: the last frame
// whose size and digest match.
func Extract(log []byte, m Message) ([]byte, error) {
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		in      bool
		size    int
		sum     string
		payload strings.Builder
		found   []byte
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, frameBegin):
			fields := strings.Fields(strings.TrimPrefix(line, frameBegin))
			in, payload = false, strings.Builder{}
			if len(fields) == 2 {
				if n, err := strconv.Atoi(fields[0]); err == nil {
					in, size, sum = true, n, fields[1]
				}
			}
		case in && line == frameEnd:
			in = false
			b, err := base64.StdEncoding.DecodeString(payload.String())
			if err != nil || len(b) != size {
				continue
			}
			d := sha256.Sum256(b)
			if hex.EncodeToString(d[:]) == sum && size == m.Framed && sum == m.SHA256 {
				found = b
			}
		case in:
			payload.WriteString(line)
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w (want %d bytes with sha256 %s)", ErrNoFrame, m.Framed, m.SHA256)
	}
	return found, nil
}
