package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

// chromium returns Debian's Chromium, skipping the test when it is missing
// outside CI and failing it in CI (hack/install-chromium.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed and CI is set: run hack/install-chromium.sh")
	}
	t.Skip("chromium is not installed (hack/install-chromium.sh installs it); skipping the browser test")
	return ""
}

// browserDAGs adds a wider DAG to the test DAGs, for the graph and Gantt views.
func browserDAGs(s *stack) []*dag.DAG {
	ds := testDAGs(s)
	wh := dag.New("warehouse", dag.Schedule("0 3 * * *"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
		dag.Catchup(false), dag.Description("nightly warehouse load"), dag.DefaultRetries(0, 0))
	start := task.Go("start", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil })
	publish := operators.Bash("publish", `echo published`)
	wh.Add(start, publish)
	var loads []task.Task
	for _, src := range []string{"orders", "customers", "products", "payments", "shipments", "returns"} {
		l := operators.Bash("load_"+src, `for i in 1 2 3; do echo "loading `+src+` batch $i"; done; sleep 0.$((RANDOM % 4 + 1))`)
		wh.Add(l)
		start.Then(l)
		loads = append(loads, l)
	}
	for i, name := range []string{"fact_sales", "dim_customer", "fact_returns"} {
		tr := operators.Bash("build_"+name, `echo building `+name+`; sleep 0.2`)
		wh.Add(tr)
		for _, l := range loads[i*2 : i*2+3-(i/2)] {
			l.Then(tr)
		}
		tr.Then(publish)
	}
	return append(ds, wh, reportDAG())
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	s := newStack(t, stackOpts{dags: browserDAGs})
	// Screenshots are checked in a temporary directory; TRELLIS_SCREENSHOTS=1
	// writes them to docs/screenshots (for the README) instead.
	shots := t.TempDir()
	if os.Getenv("TRELLIS_SCREENSHOTS") != "" {
		shots = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// History for the grid: a few runs of etl, one warehouse run.
	for i := 0; i < 4; i++ {
		r := s.trigger("etl", fmt.Sprintf(`{"limit": %d}`, i+1))
		s.waitRun("etl", r.RunID, task.RunSuccess)
	}
	wh := s.trigger("warehouse", "")
	s.waitRun("warehouse", wh.RunID, task.RunSuccess)

	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser exits, and t.TempDir's removal
	// then fails the test. Removed here, retried a bounded number of times.
	profile, err := os.MkdirTemp("", "trellis-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("left the Chromium profile %s: still being written", profile)
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	quiet := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled node event") {
			t.Logf("chromedp: %s", msg)
		}
	}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(quiet))
	defer cancelC()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()
	poll := func(expr string) chromedp.Action {
		return chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(45*time.Second))
	}
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var buf []byte
			if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
				return err
			}
			checkPicture(t, name, buf)
			return os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		})
	}
	// viewShot is shot of the viewport only: a modal dialog is taller than
	// the page under it, which is all a full screenshot takes.
	viewShot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var buf []byte
			if err := chromedp.CaptureScreenshot(&buf).Do(ctx); err != nil {
				return err
			}
			checkPicture(t, name, buf)
			return os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		})
	}
	base := s.hs.URL + "/"

	// The DAG list.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/"),
		chromedp.WaitVisible(`button[aria-label="Trigger etl"]`),
		poll(`document.getElementById("live").textContent === "live"`),
		shot("dags.png"),
	)
	if err != nil {
		t.Fatalf("DAG list: %v", err)
	}

	// Trigger etl with conf through the dialog; its grid cells turn green.
	var runsBefore RunList
	s.do("GET", "/api/v1/dags/etl/runs", nil, &runsBefore)
	err = chromedp.Run(ctx,
		chromedp.Click(`button[aria-label="Trigger etl"]`),
		chromedp.WaitVisible(`#trigger-form input[name="limit"]`),
		chromedp.SetValue(`#trigger-form input[name="limit"]`, "42"),
		chromedp.SetValue(`#trigger-form input[name="mode"]`, "slow"),
		chromedp.Click(`dialog button[type=submit]`),
		chromedp.WaitVisible(`table.grid`),
		poll(fmt.Sprintf(`document.querySelectorAll("table.grid thead th a").length === %d`, runsBefore.Total+1)),
		poll(`[...document.querySelectorAll("table.grid tbody tr")].every(tr => tr.lastElementChild.querySelector("a.cell").dataset.state === "success")`),
		shot("grid.png"),
	)
	if err != nil {
		t.Fatalf("trigger and grid: %v", err)
	}
	var runs RunList
	s.do("GET", "/api/v1/dags/etl/runs?limit=1", nil, &runs)
	if runs.Total != runsBefore.Total+1 || string(runs.Runs[0].Conf) != `{"limit":42,"mode":"slow"}` {
		t.Errorf("the UI's trigger made %+v", runs)
	}

	// The trigger form of a DAG with typed params: one input per param, built
	// from its JSON Schema; the API's per-field errors show next to the inputs.
	var form struct {
		Region  []string `json:"region"`
		Days    []string `json:"days"`
		DryRun  bool     `json:"dryRun"`
		Email   []string `json:"email"`
		Hints   string   `json:"hints"`
		Focused string   `json:"focused"`
	}
	sel := func(name string) string { return `#trigger-form [name="` + name + `"]` }
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/"),
		chromedp.Click(`button[aria-label="Trigger report"]`),
		chromedp.WaitVisible(sel("region")),
		chromedp.Evaluate(`(() => {
			const q = (n) => document.querySelector('#trigger-form [name="' + n + '"]');
			const r = q("region"), d = q("days"), e = q("email");
			return {
				region: [r.tagName, ...[...r.options].map((o) => o.textContent + (o.selected ? "*" : ""))],
				days: [d.type, d.min, d.max, d.step, d.value],
				dryRun: q("dryRun").type === "checkbox" && q("dryRun").checked,
				email: [e.type, String(e.required), e.value],
				hints: [...document.querySelectorAll("#trigger-form .param .hint")].map((x) => x.textContent).join(" | "),
				focused: document.activeElement.name,
			};
		})()`, &form),
	)
	if err != nil {
		t.Fatalf("typed trigger form: %v", err)
	}
	if strings.Join(form.Region, ",") != "SELECT,eu*,us,apac" || strings.Join(form.Days, ",") != "number,1,31,1,7" || form.DryRun ||
		strings.Join(form.Email, ",") != "text,true," || form.Focused != "region" ||
		!strings.Contains(form.Hints, "where the data lives · string") || !strings.Contains(form.Hints, "days to cover · integer, from 1 to 31") {
		t.Errorf("the form built from the schema = %+v", form)
	}
	var runsBeforeReport RunList
	s.do("GET", "/api/v1/dags/report/runs", nil, &runsBeforeReport)
	err = chromedp.Run(ctx,
		chromedp.SetValue(sel("region"), "1"), // us
		chromedp.SetValue(sel("days"), "40"),
		chromedp.Click(`dialog button[type=submit]`),
		poll(`document.querySelector('#trigger-form [name="days"]').getAttribute("aria-invalid") === "true"`),
		poll(`document.getElementById("param-1-error").textContent === "days must be at most 31, got 40" && `+
			`document.getElementById("param-3-error").textContent === "email is required" && `+
			`document.activeElement.name === "days" && document.getElementById("param-0-error").textContent === ""`),
		viewShot("trigger-form.png"),
		chromedp.SetValue(sel("days"), "30"),
		chromedp.SetValue(sel("email"), "ops@example.com"),
		chromedp.Click(sel("dryRun")),
		chromedp.Click(`dialog button[type=submit]`),
		chromedp.WaitVisible(`table.grid`),
		poll(`!document.getElementById("dialog").open`),
	)
	if err != nil {
		t.Fatalf("typed trigger: %v", err)
	}
	var reportRuns RunList
	s.do("GET", "/api/v1/dags/report/runs?limit=1", nil, &reportRuns)
	if reportRuns.Total != runsBeforeReport.Total+1 || len(reportRuns.Runs) == 0 {
		t.Fatalf("the refused submit made a run, or the good one none: %+v", reportRuns)
	}
	typed := reportRuns.Runs[0]
	if string(typed.Conf) != `{"region":"us","days":30,"dryRun":true,"email":"ops@example.com","note":""}` {
		t.Errorf("the form sent conf %s", typed.Conf)
	}
	s.waitRun("report", typed.RunID, task.RunSuccess)
	var x XCom
	s.do("GET", runPath("report", typed.RunID)+"/tasks/summary/xcom", nil, &x)
	if string(x.Value) != `"us/30/true/ops@example.com/"` {
		t.Errorf("the task read the params as %s", x.Value)
	}

	// The raw JSON fallback: opened, it holds the form's conf, and what is
	// typed into it is sent.
	var rawConf string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/"),
		chromedp.Click(`button[aria-label="Trigger report"]`),
		chromedp.WaitVisible(sel("email")),
		chromedp.SetValue(sel("email"), "raw@example.com"),
		chromedp.Click(`details.raw summary`),
		chromedp.WaitVisible(`#conf`),
		chromedp.Value(`#conf`, &rawConf),
		chromedp.SetValue(`#conf`, `{"email": "raw@example.com", "days": 2}`),
		chromedp.Click(`dialog button[type=submit]`),
		poll(`!document.getElementById("dialog").open`),
	)
	if err != nil {
		t.Fatalf("raw JSON trigger: %v", err)
	}
	var fromForm map[string]any
	if err := json.Unmarshal([]byte(rawConf), &fromForm); err != nil || fromForm["email"] != "raw@example.com" || fromForm["days"] != 7.0 || fromForm["region"] != "eu" {
		t.Errorf("the raw JSON opened with %q, want the form's conf", rawConf)
	}
	s.do("GET", "/api/v1/dags/report/runs?limit=1", nil, &reportRuns)
	if reportRuns.Total != runsBeforeReport.Total+2 || string(reportRuns.Runs[0].Conf) != `{"email":"raw@example.com","days":2}` {
		t.Errorf("the raw JSON trigger made %+v", reportRuns)
	}

	// The graph of the warehouse DAG, coloured by its run.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse/graph?run="+url.QueryEscape(wh.RunID)),
		chromedp.WaitVisible(`.graph svg`),
		poll(`document.querySelectorAll(".graph svg a.node").length === 11`),
		shot("graph.png"),
	)
	if err != nil {
		t.Fatalf("graph: %v", err)
	}

	// Gantt of the warehouse run.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse/runs/"+url.PathEscape(wh.RunID)),
		chromedp.WaitVisible(`.gantt`),
		poll(`document.querySelectorAll(".gantt a.b").length === 11`),
		shot("gantt.png"),
	)
	if err != nil {
		t.Fatalf("gantt: %v", err)
	}

	// A failed try: trigger flaky, open boom's failed try and its log, clear it,
	// and see it run again and succeed.
	fl := s.trigger("flaky", "")
	s.waitRun("flaky", fl.RunID, task.RunFailed)
	cell := `a.cell[data-task="boom"][data-run="` + fl.RunID + `"]`
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/flaky"),
		chromedp.WaitVisible(cell+`[data-state="failed"]`),
		chromedp.Click(cell),
		chromedp.WaitVisible(`#log`),
		poll(`document.getElementById("log").textContent.includes("about to fail")`),
		poll(`document.querySelector("dd.error") && document.querySelector("dd.error").textContent.includes("source not ready")`),
		shot("task-log.png"),
		chromedp.Click(`#clear-failed`),
		chromedp.Click(`#clear-down`),
		chromedp.Click(`#clear`),
		poll(`!!document.querySelector('a[href$="/tries/2"]')`),
		chromedp.Click(`a[href$="/tries/2"]`),
		poll(`document.getElementById("log") && document.getElementById("log").textContent.includes("the source is ready")`),
	)
	if err != nil {
		t.Fatalf("failed try, clear, rerun: %v", err)
	}
	s.waitRun("flaky", fl.RunID, task.RunSuccess)

	// The audit log shows the UI's actions.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/audit"),
		poll(`[...document.querySelectorAll("main td code")].some(c => c.textContent === "clear")`),
		shot("audit.png"),
	)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}

	// A phone-sized screen: the DAG list still fits.
	err = chromedp.Run(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Navigate(base+"#/"),
		chromedp.WaitVisible(`button[aria-label="Trigger etl"]`),
		poll(`document.documentElement.scrollWidth <= 390`),
		shot("dags-phone.png"),
	)
	if err != nil {
		t.Fatalf("phone: %v", err)
	}
}

// checkPicture fails the test when a screenshot is blank: too few distinct
// colours, or one colour covering nearly all of it.
func checkPicture(t *testing.T, name string, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	colours := map[uint32]int{}
	r := img.Bounds()
	total := 0
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			colours[(cr>>8)<<16|(cg>>8)<<8|cb>>8]++
			total++
		}
	}
	top := 0
	for _, n := range colours {
		top = max(top, n)
	}
	if len(colours) < 16 || float64(top) > 0.97*float64(total) {
		t.Errorf("%s looks blank: %d colours, the commonest covers %.1f%%", name, len(colours), 100*float64(top)/float64(total))
	}
}
