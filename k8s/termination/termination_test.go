package termination

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	small := Message{Status: Succeeded, Result: json.RawMessage(`{"a":1}`)}
	body, frame := small.Encode()
	if frame != nil {
		t.Fatal("frame for a small result")
	}
	m, ok := Decode(string(body))
	if !ok || string(m.Result) != `{"a":1}` {
		t.Errorf("decode: %+v %v", m, ok)
	}
	big := Message{Status: Succeeded, Result: json.RawMessage(`"` + strings.Repeat("é", 20000) + `"`)}
	body, frame = big.Encode()
	if len(body) > MaxMessage || frame == nil {
		t.Fatalf("body %d bytes, frame %v", len(body), frame != nil)
	}
	m, _ = Decode(string(body))
	log := append([]byte("before\n##trellis-result-begin 3 deadbeef\nAAA\n##trellis-result-end\n"), frame...)
	log = append(log, []byte("after\n")...)
	got, err := Extract(log, m)
	if err != nil || string(got) != string(big.Result) {
		t.Errorf("extract: %d bytes, %v", len(got), err)
	}
	if _, err := Extract([]byte("nothing\n"), m); err == nil {
		t.Error("extract from a log without the frame")
	}
	long := Message{Status: Failed, Error: strings.Repeat("x", 10000), ExitCode: 2}
	body, _ = long.Encode()
	if len(body) > MaxMessage {
		t.Errorf("long error: %d bytes", len(body))
	}
	if m, ok := Decode(string(body)); !ok || m.ExitCode != 2 || !strings.HasSuffix(m.Error, "…") {
		t.Errorf("long error decoded: %v %d", ok, m.ExitCode)
	}
	if _, ok := Decode("Error: something"); ok {
		t.Error("decoded a plain message")
	}
}

func FuzzDecodeExtract(f *testing.F) {
	f.Add(`{"status":"success","framed":3,"sha256":"x"}`, "##trellis-result-begin 3 x\nAAA\n##trellis-result-end\n")
	f.Fuzz(func(t *testing.T, msg, log string) {
		m, _ := Decode(msg)
		_, _ = Extract([]byte(log), m)
	})
}
