package kubernetes

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/k8s"
)

// executorPrefix starts the lines the executor itself adds to a try's log;
// they are not container lines and are not counted when a stream resumes.
const executorPrefix = "[trellis-executor] "

// logStream follows the base container's log into the try's log.
type logStream struct {
	w     io.WriteCloser
	done  chan struct{}
	lines int
}

// ensureLogs starts following the try's log once.
func (e *Executor) ensureLogs(tr *tracked) {
	tr.mu.Lock()
	if tr.logs != nil {
		tr.mu.Unlock()
		return
	}
	ls := &logStream{w: e.cfg.Logs(tr.key), done: make(chan struct{})}
	tr.logs = ls
	skip := tr.skipLines
	tr.mu.Unlock()
	e.wg.Add(1)
	go e.stream(tr, ls, skip)
}

// waitLogs reports whether the log is still being followed; the stream
// enqueues the pod when it ends.
func (e *Executor) waitLogs(tr *tracked) bool {
	tr.mu.Lock()
	ls := tr.logs
	tr.mu.Unlock()
	if ls == nil {
		return false
	}
	select {
	case <-ls.done:
		return false
	default:
		return true
	}
}

// closeLogs adds the executor's last word to the log and closes it.
func (e *Executor) closeLogs(tr *tracked, msg string) {
	tr.mu.Lock()
	ls := tr.logs
	tr.mu.Unlock()
	var w io.WriteCloser
	if ls != nil {
		w = ls.w
	} else if msg != "" {
		w = e.cfg.Logs(tr.key)
	}
	if w == nil {
		return
	}
	if msg != "" {
		io.WriteString(w, executorPrefix+msg+"\n")
	}
	if err := w.Close(); err != nil {
		e.cfg.Logger.Warn("save log", "pod", tr.id, "err", err)
	}
}

// appendLog writes one executor line to a try's log that is not followed.
func (e *Executor) appendLog(tr *tracked, msg string) {
	tr.mu.Lock()
	ls := tr.logs
	tr.mu.Unlock()
	if ls != nil {
		return // closeLogs writes it
	}
	w := e.cfg.Logs(tr.key)
	io.WriteString(w, executorPrefix+msg+"\n")
	w.Close()
}

// countLines counts the container lines of a saved log.
func countLines(saved []byte) int {
	n := 0
	for len(saved) > 0 {
		i := bytes.IndexByte(saved, '\n')
		if i < 0 {
			break
		}
		if !bytes.HasPrefix(saved[:i], []byte(executorPrefix)) {
			n++
		}
		saved = saved[i+1:]
	}
	return n
}

// stream follows the log with timestamps. A stream that breaks while the
// container runs is opened again from the second of the last line seen,
// skipping the lines already written (those before the last timestamp, and
// as many at it as were written), so that nothing is lost or duplicated.
// skip lines are dropped first: the lines a previous process saved.
func (e *Executor) stream(tr *tracked, ls *logStream, skip int) {
	defer e.wg.Done()
	defer func() {
		close(ls.done)
		e.queue.Add(tr.id)
	}()
	var (
		last   time.Time
		atLast int
	)
	failures := 0
	for {
		if e.base.Err() != nil {
			return
		}
		opts := &corev1.PodLogOptions{Container: k8s.BaseContainerName, Follow: true, Timestamps: true}
		if !last.IsZero() {
			t := metav1.NewTime(last.Truncate(time.Second))
			opts.SinceTime = &t
		}
		rc, err := e.cfg.Client.Pods(tr.ns).GetLogs(tr.name, opts).Stream(e.base)
		got := 0
		if err == nil {
			failures = 0
			seenAtLast := 0
			br := bufio.NewReaderSize(rc, 64<<10)
			for {
				line, rerr := br.ReadString('\n')
				if line != "" {
					text := line
					ts := last
					if sp := strings.IndexByte(line, ' '); sp > 0 {
						if t, perr := time.Parse(time.RFC3339Nano, line[:sp]); perr == nil {
							ts, text = t, line[sp+1:]
						}
					}
					switch {
					case ts.Before(last):
						continue
					case ts.Equal(last):
						seenAtLast++
						if seenAtLast <= atLast {
							continue
						}
						atLast++
					default:
						last, atLast, seenAtLast = ts, 1, 1
					}
					got++
					if skip > 0 {
						skip--
						continue
					}
					if !strings.HasSuffix(text, "\n") {
						text += "\n"
					}
					if _, werr := io.WriteString(ls.w, text); werr != nil {
						e.cfg.Logger.Warn("save log", "pod", tr.id, "err", werr)
					}
					ls.lines++
				}
				if rerr != nil {
					break
				}
			}
			rc.Close()
		} else {
			failures++
		}
		if e.containerDone(tr) {
			if err == nil || failures > 1 {
				return
			}
			continue // the container has ended: one more try at once, then its log is given up
		}
		if err == nil && got > 0 {
			continue // broken mid-way: resume at once
		}
		select {
		case <-e.base.Done():
			return
		case <-time.After(backoff(failures)):
		}
	}
}

// containerDone reports whether the base container can write no more: the
// pod is gone, ended, or its base container terminated.
func (e *Executor) containerDone(tr *tracked) bool {
	e.mu.Lock()
	inf := e.informers[tr.ns]
	e.mu.Unlock()
	if inf == nil {
		return true
	}
	pod, err := inf.pods.Get(tr.name)
	if err != nil {
		return true
	}
	tr.mu.Lock()
	uid := tr.uid
	tr.mu.Unlock()
	if uid != "" && pod.UID != uid {
		return true
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return true
	}
	s := containerStatus(pod, k8s.BaseContainerName)
	return s != nil && s.State.Terminated != nil
}
