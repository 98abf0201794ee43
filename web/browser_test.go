package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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

// failMinute: a warehouse run whose logical date is at this minute of an hour
// fails (its sensor errs), for the calendar's red day and a "why".
const failMinute = 7

// browserDAGs adds to the test DAGs: warehouse, a wider DAG scheduled in
// Europe/Paris with tags and a doc, whose sensor feeds the last task across
// three columns (the graph routes that edge around the boxes); marts, tagged;
// vendor_sftp, whose sensor waits an hour between pokes; report (typed
// params); lakehouse (task groups, one nested, and a setup and teardown
// pair: groupsDAG); and fan (a mapped task whose element 3 fails once:
// fanTestDAG).
func browserDAGs(s *stack) []*dag.DAG {
	ds := testDAGs(s)
	wh := dag.New("warehouse", dag.Schedule("0 3 * * *"), dag.TimezoneName("Europe/Paris"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
		dag.Catchup(false), dag.Description("nightly warehouse load"), dag.DefaultRetries(0, 0), dag.Tags("warehouse", "nightly"),
		dag.Doc("Loads the shop's tables into the warehouse, builds the facts and publishes them.\nOwner: data-platform <data@example.com>\nRunbook: rerun a failed load; publish waits for the partner feed."))
	start := task.Go("start", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil })
	feed := task.Sensor("partner_feed", func(ctx context.Context, r *task.Run) (bool, error) {
		if r.LogicalDate().Minute() == failMinute {
			return false, errors.New("partner feed rejected: checksum mismatch in orders.csv")
		}
		return true, nil
	}, task.PokeInterval(time.Second))
	publish := operators.Bash("publish", `echo published`, task.Trigger(task.NoneFailed))
	wh.Add(start, feed, publish)
	feed.Then(publish)
	var loads []task.Task
	for _, src := range []string{"orders", "customers", "products", "payments", "shipments", "returns"} {
		l := operators.Bash("load_"+src, `for i in 1 2 3; do echo "loading `+src+` batch $i"; done; sleep 0.$((RANDOM % 3 + 1))`, task.Pool("warehouse_db"))
		wh.Add(l)
		start.Then(l)
		loads = append(loads, l)
	}
	for i, name := range []string{"fact_sales", "dim_customer", "fact_returns"} {
		tr := operators.Bash("build_"+name, `echo building `+name+`; sleep 0.1`)
		wh.Add(tr)
		for _, l := range loads[i*2 : i*2+3-(i/2)] {
			l.Then(tr)
		}
		tr.Then(publish)
	}
	marts := dag.New("marts", dag.Description("data marts for the BI dashboards"), dag.Tags("warehouse", "bi"), dag.DefaultRetries(0, 0))
	marts.Add(task.Go("refresh_marts", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil }))
	vendor := dag.New("vendor_sftp", dag.Description("waits for the vendor's daily file"), dag.Tags("ingest"), dag.DefaultRetries(0, 0))
	landed := task.Sensor("file_landed", func(ctx context.Context, r *task.Run) (bool, error) { return false, nil }, task.PokeInterval(time.Hour))
	ingest := task.Go("ingest", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil })
	vendor.Add(landed, ingest)
	landed.Then(ingest)
	failThree := new(atomic.Bool)
	failThree.Store(true)
	return append(ds, wh, marts, vendor, reportDAG(), groupsDAG(), fanTestDAG(failThree))
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	s := newStack(t, stackOpts{dags: browserDAGs, pools: map[string]int{"warehouse_db": 3}})
	// Screenshots are checked in a temporary directory; TRELLIS_SCREENSHOTS=1
	// writes them to docs/screenshots (for the README) instead.
	shots := t.TempDir()
	if os.Getenv("TRELLIS_SCREENSHOTS") != "" {
		shots = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// History: a few runs of etl; warehouse on seven past days (the one at
	// failMinute fails), for the grid, the calendar and the durations; a
	// vendor_sftp run whose sensor waits.
	for i := 0; i < 4; i++ {
		r := s.trigger("etl", fmt.Sprintf(`{"limit": %d}`, i+1))
		s.waitRun("etl", r.RunID, task.RunSuccess)
	}
	now := time.Now().UTC()
	noon := time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.UTC)
	var whRuns []Run
	var failed Run
	for _, ago := range []int{13, 9, 6, 4, 3, 2, 1} {
		ld := noon.AddDate(0, 0, -ago)
		if ago == 4 {
			ld = ld.Add(failMinute * time.Minute)
		}
		var r Run
		if res := s.do("POST", "/api/v1/dags/warehouse/runs", `{"logicalDate":"`+ld.Format(time.RFC3339)+`"}`, &r); res.StatusCode != 201 {
			t.Fatalf("trigger warehouse at %s: %d", ld, res.StatusCode)
		}
		if ago == 4 {
			failed = r
		} else {
			whRuns = append(whRuns, r)
		}
	}
	vendor := s.trigger("vendor_sftp", "")
	fan := s.trigger("fan", "")
	s.waitRun("fan", fan.RunID, task.RunFailed)
	lhGood := s.trigger("lakehouse", "")
	s.waitRun("lakehouse", lhGood.RunID, task.RunSuccess)
	lhBad := s.trigger("lakehouse", `{"fail": true}`)
	s.waitRun("lakehouse", lhBad.RunID, task.RunFailed)
	for _, r := range whRuns {
		s.waitRun("warehouse", r.RunID, task.RunSuccess)
	}
	s.waitRun("warehouse", failed.RunID, task.RunFailed)
	wh := whRuns[len(whRuns)-1]
	s.waitFor("vendor_sftp's sensor to be deferred", 30*time.Second, func() bool {
		var ti TaskInstance
		s.do("GET", runPath("vendor_sftp", vendor.RunID)+"/tasks/file_landed", nil, &ti)
		return ti.State == task.StateDeferred
	})

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
	bctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(quiet))
	defer cancelC()
	ctx, cancelT := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelT()
	// text reads an element's text in one step: a live refresh may replace the
	// element between the two steps of chromedp.Text.
	text := func(sel string, out *string) chromedp.Action {
		return chromedp.Evaluate(`document.querySelector(`+strconv.Quote(sel)+`).textContent`, out)
	}
	// click clicks an element in one step, for elements a live refresh
	// rebuilds (chromedp.Click finds the node, then clicks where it was).
	click := func(sel string) chromedp.Action {
		return chromedp.Evaluate(`document.querySelector(`+strconv.Quote(sel)+`).click()`, nil)
	}
	poll := func(expr string) chromedp.Action {
		return chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(20*time.Second))
	}
	// waitClick waits for an element, then clicks it in one step.
	waitClick := func(sel string) chromedp.Action {
		return chromedp.Tasks{poll(`!!document.querySelector(` + strconv.Quote(sel) + `)`), click(sel)}
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
	// fatal ends the test after a failed step, with what the page showed:
	// its text in the log and a screenshot (failed-<step>.png) next to the
	// others.
	fatal := func(step string, err error) {
		t.Helper()
		var text string
		var buf []byte
		dctx, cancel := context.WithTimeout(bctx, 5*time.Second)
		defer cancel()
		if chromedp.Run(dctx, chromedp.Evaluate(`location.hash + "\n" + document.getElementById("main").innerText`, &text), chromedp.CaptureScreenshot(&buf)) == nil {
			_ = os.WriteFile(filepath.Join(shots, "failed-"+step+".png"), buf, 0o644)
			if len(text) > 3000 {
				text = text[:3000] + "…"
			}
		}
		t.Fatalf("%s: %v\nthe page showed:\n%s", step, err, text)
	}

	// The DAG list: run counts by state; the search and the tag filter narrow
	// it and live in the URL, so a link shows the same list.
	rows := `[...document.querySelectorAll("table.dags tbody tr[data-dag]")].map((tr) => tr.dataset.dag).join(",")`
	var counts map[string]string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/"),
		chromedp.WaitVisible(`button[aria-label="Trigger etl"]`),
		poll(`document.getElementById("live").textContent === "live"`),
		poll(rows+` === "etl,fan,flaky,lakehouse,marts,report,slow,vendor_sftp,warehouse"`),
		chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll("table.dags tbody tr[data-dag]")].map((tr) =>
			[tr.dataset.dag, [...tr.querySelectorAll(".cnt")].map((c) => c.dataset.state + "=" + c.firstChild.textContent).join(" ")]))`, &counts),
	)
	if err != nil {
		fatal("DAG-list", err)
	}
	if counts["etl"] != "queued=0 running=0 success=4 failed=0" || counts["vendor_sftp"] != "queued=0 running=1 success=0 failed=0" ||
		!strings.HasSuffix(counts["warehouse"], "failed=1") || counts["marts"] != "queued=0 running=0 success=0 failed=0" {
		t.Errorf("run counts = %v", counts)
	}
	var nextRun, searchValue string
	err = chromedp.Run(ctx,
		text(`tr[data-dag="warehouse"] td.next .time`, &nextRun),
		chromedp.SendKeys(`#dag-search`, "ware"),
		poll(rows+` === "warehouse" && location.hash === "#/?search=ware" && document.getElementById("dag-count").textContent === "1 of 9 DAG(s) match"`),
		chromedp.Evaluate(`(() => { const i = document.getElementById("dag-search"); i.value = ""; i.dispatchEvent(new Event("input")); })()`, nil),
		poll(rows+`.split(",").length === 9`),
		click(`button.chip[data-tag="warehouse"]`),
		poll(rows+` === "marts,warehouse" && location.hash === "#/?tag=warehouse" && document.querySelector('button.chip[data-tag="warehouse"]').getAttribute("aria-pressed") === "true"`),
		click(`tr[data-dag="marts"] button.chip`), // the row's own tag chip: warehouse again, which unsets it
		poll(rows+`.split(",").length === 9 && location.hash === "#/"`),
		chromedp.Navigate(base+"#/?tag=nightly&search=LOAD"),
		poll(rows+` === "warehouse" && document.querySelector('button.chip[data-tag="nightly"]').getAttribute("aria-pressed") === "true"`),
		chromedp.Value(`#dag-search`, &searchValue),
		chromedp.Navigate(base+"#/"),
		poll(rows+`.split(",").length === 9`),
		shot("dags.png"),
	)
	if err != nil {
		fatal("DAG-list-search-and-tags", err)
	}
	if !strings.HasSuffix(nextRun, " UTC") || searchValue != "LOAD" {
		t.Errorf("warehouse's next run shows %q (want a UTC time); the search box from the URL holds %q", nextRun, searchValue)
	}

	// The DAG page: doc, tags, zone, schedule, next run, version; a bar per run
	// above the grid, which takes the page's width; the time zone switch.
	var page struct {
		Doc, Zone, Next, Version, Tags string
		Bars, Columns                  int
		BarLabel                       string
		GridWidth, MainWidth           float64
		FirstLabel                     string
	}
	pageJS := `(() => ({
		doc: document.getElementById("dag-doc").textContent,
		zone: document.getElementById("dag-zone").textContent,
		next: document.querySelector("#next-run .time").textContent,
		version: document.getElementById("dag-version").textContent,
		tags: [...document.querySelectorAll("#dag-tags .chip")].map((c) => c.textContent).join(","),
		bars: document.querySelectorAll("table.grid .dbar").length,
		columns: document.querySelectorAll("table.grid thead .labels th a").length,
		barLabel: document.querySelector("table.grid .dbar").getAttribute("aria-label"),
		gridWidth: document.querySelector("table.grid").getBoundingClientRect().width,
		mainWidth: document.getElementById("main").getBoundingClientRect().width,
		firstLabel: document.querySelector("table.grid thead .labels th a").textContent,
	}))()`
	var tzStored string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse"),
		poll(`!!document.getElementById("dag-doc") && document.querySelectorAll("table.grid .dbar").length === document.querySelectorAll("table.grid thead .labels th a").length && document.querySelectorAll("table.grid .dbar").length >= 7`),
		chromedp.Evaluate(pageJS, &page),
		shot("grid.png"),
		chromedp.Click(`#tz button[data-tz="dag"]`),
		poll(`/ GMT\+[12]$/.test(document.querySelector("#next-run .time").textContent) && document.getElementById("tz-dag").textContent === "DAG: Europe/Paris"`),
		chromedp.Evaluate(`localStorage.getItem("trellis.tz")`, &tzStored),
		chromedp.Reload(),
		poll(`document.querySelector("#next-run .time") && / GMT\+[12]$/.test(document.querySelector("#next-run .time").textContent) && `+
			`document.querySelector('#tz button[data-tz="dag"]').getAttribute("aria-pressed") === "true"`),
		chromedp.Click(`#tz button[data-tz="utc"]`),
		poll(`/ UTC$/.test(document.querySelector("#next-run .time").textContent)`),
	)
	if err != nil {
		fatal("DAG-page", err)
	}
	var detail DAGDetail
	s.do("GET", "/api/v1/dags/warehouse", nil, &detail)
	if !strings.Contains(page.Doc, "Owner: data-platform <data@example.com>") || page.Zone != "Europe/Paris" || !strings.HasSuffix(page.Next, " UTC") ||
		page.Version != detail.Version || page.Tags != "warehouse,nightly" || page.Bars != page.Columns ||
		!strings.Contains(page.BarLabel, ": success, ") || !strings.HasSuffix(page.FirstLabel, " UTC") || page.GridWidth < 0.95*page.MainWidth-32 {
		t.Errorf("DAG page = %+v", page)
	}
	if tzStored != "dag" {
		t.Errorf("the switch stored %q", tzStored)
	}

	// Trigger etl with conf through the dialog; its grid cells turn green.
	var runsBefore RunList
	s.do("GET", "/api/v1/dags/etl/runs", nil, &runsBefore)
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/"),
		waitClick(`button[aria-label="Trigger etl"]`),
		chromedp.WaitVisible(`#trigger-form input[name="limit"]`),
		chromedp.SetValue(`#trigger-form input[name="limit"]`, "42"),
		chromedp.SetValue(`#trigger-form input[name="mode"]`, "slow"),
		chromedp.Click(`dialog button[type=submit]`),
		chromedp.WaitVisible(`table.grid`),
		poll(fmt.Sprintf(`document.querySelectorAll("table.grid thead th a").length === %d`, runsBefore.Total+1)),
		poll(`[...document.querySelectorAll("table.grid tbody tr")].every(tr => tr.lastElementChild.querySelector("a.cell").dataset.state === "success")`),
	)
	if err != nil {
		fatal("trigger-and-grid", err)
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
		waitClick(`button[aria-label="Trigger report"]`),
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
		fatal("typed-trigger-form", err)
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
		fatal("typed-trigger", err)
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
		waitClick(`button[aria-label="Trigger report"]`),
		chromedp.WaitVisible(sel("email")),
		chromedp.SetValue(sel("email"), "raw@example.com"),
		chromedp.Click(`details.raw summary`),
		chromedp.WaitVisible(`#conf`),
		poll(`document.getElementById("conf").value !== ""`), // filled by the toggle event, which comes a moment later
		chromedp.Value(`#conf`, &rawConf),
		chromedp.SetValue(`#conf`, `{"email": "raw@example.com", "days": 2}`),
		chromedp.Click(`dialog button[type=submit]`),
		poll(`!document.getElementById("dialog").open`),
	)
	if err != nil {
		fatal("raw-JSON-trigger", err)
	}
	var fromForm map[string]any
	if err := json.Unmarshal([]byte(rawConf), &fromForm); err != nil || fromForm["email"] != "raw@example.com" || fromForm["days"] != 7.0 || fromForm["region"] != "eu" {
		t.Errorf("the raw JSON opened with %q, want the form's conf", rawConf)
	}
	s.do("GET", "/api/v1/dags/report/runs?limit=1", nil, &reportRuns)
	if reportRuns.Total != runsBeforeReport.Total+2 || string(reportRuns.Runs[0].Conf) != `{"email":"raw@example.com","days":2}` {
		t.Errorf("the raw JSON trigger made %+v", reportRuns)
	}

	// The graph of the warehouse DAG, coloured by its run: every box shows its
	// kind, and its trigger rule when it is not all_success.
	var subs map[string]string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse/graph?run="+url.QueryEscape(wh.RunID)),
		chromedp.WaitVisible(`.graph svg`),
		poll(`document.querySelectorAll(".graph svg a.node").length === 12`),
		chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll(".graph svg a.node")].map((n) => [n.dataset.task, n.querySelector("text.sub").textContent]))`, &subs),
		shot("graph.png"),
	)
	if err != nil {
		fatal("graph", err)
	}
	if subs["start"] != "go" || subs["partner_feed"] != "sensor" || subs["load_orders"] != "bash" || subs["publish"] != "bash · none_failed" {
		t.Errorf("graph node kinds and rules = %v", subs)
	}

	// Task groups in the grid: a row per group (a nested one indented under
	// its group) with a disclosure button and the group's summary state per
	// run; collapsing hides its tasks and nested groups, is kept per DAG in
	// localStorage, and survives a reload; the focus stays on the button.
	type gridRow struct {
		Kind, ID, Label, Expanded, Last string
		Indent                          float64
	}
	gridRowsJS := `[...document.querySelectorAll("table.grid tbody tr")].map((tr) => {
		const th = tr.querySelector("th"), b = th.querySelector("button.disclosure");
		const cells = tr.querySelectorAll("a.cell");
		return { kind: b ? "group" : "task", id: tr.dataset.group || tr.dataset.task, label: th.textContent,
			expanded: b ? b.getAttribute("aria-expanded") : "", last: cells[cells.length - 1].dataset.state,
			indent: parseFloat(getComputedStyle(th).paddingLeft) };
	})`
	var lhRows, lhCollapsed, lhReloaded, lhDeep []gridRow
	var stored, focused, afterExpand string
	groupBtn := func(id string) string { return `button.disclosure[data-group="` + id + `"]` }
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`localStorage.removeItem("trellis.collapsed.lakehouse")`, nil),
		chromedp.Navigate(base+"#/dags/lakehouse"),
		poll(`document.querySelectorAll("table.grid tbody tr").length === 12 && document.querySelectorAll("table.grid thead .labels th a").length === 2`),
		chromedp.Evaluate(gridRowsJS, &lhRows),
		chromedp.Focus(groupBtn("quality")),
		chromedp.KeyEvent("\r"),
		poll(`document.querySelector('`+groupBtn("quality")+`').getAttribute("aria-expanded") === "false" && document.querySelectorAll("table.grid tbody tr").length === 7`),
		chromedp.Evaluate(gridRowsJS, &lhCollapsed),
		chromedp.Evaluate(`localStorage.getItem("trellis.collapsed.lakehouse")`, &stored),
		chromedp.Evaluate(`document.activeElement.dataset.group || document.activeElement.tagName`, &focused),
		chromedp.Reload(),
		poll(`!!document.querySelector('`+groupBtn("quality")+`') && document.querySelectorAll("table.grid tbody tr").length === 7`),
		chromedp.Evaluate(gridRowsJS, &lhReloaded),
		click(groupBtn("quality")),
		poll(`document.querySelector('`+groupBtn("quality")+`').getAttribute("aria-expanded") === "true" && document.querySelectorAll("table.grid tbody tr").length === 12`),
		chromedp.Evaluate(`String(localStorage.getItem("trellis.collapsed.lakehouse"))`, &afterExpand),
		click(groupBtn("quality.deep")),
		poll(`document.querySelector('`+groupBtn("quality.deep")+`').getAttribute("aria-expanded") === "false" && document.querySelectorAll("table.grid tbody tr").length === 10`),
		chromedp.Evaluate(gridRowsJS, &lhDeep),
		chromedp.Evaluate(`document.activeElement.blur()`, nil),
		shot("grid-groups.png"),
	)
	if err != nil {
		fatal("grid-groups", err)
	}
	rowsOf := func(rs []gridRow) string {
		var out []string
		for _, r := range rs {
			x := r.Kind + ":" + r.ID + "=" + r.Last
			if r.Expanded != "" {
				x += "/" + r.Expanded
			}
			out = append(out, x)
		}
		return strings.Join(out, " ")
	}
	nulls, rng := "task:quality.check_nulls=success", "task:quality.check_range=failed"
	if len(lhRows) > 2 && lhRows[2].ID == "quality.check_range" {
		nulls, rng = rng, nulls
	}
	wantRows := "task:extract=success group:quality=failed/true " + nulls + " " + rng + " group:quality.deep=success/true task:quality.deep.profile=success " +
		"task:quality.deep.compare=success group:model=upstream_failed/true task:model.create_cluster=upstream_failed task:model.train=upstream_failed " +
		"task:model.delete_cluster=upstream_failed task:publish=upstream_failed"
	if got := rowsOf(lhRows); got != wantRows {
		t.Errorf("lakehouse grid rows:\n%s\nwant\n%s", got, wantRows)
	}
	byID := map[string]gridRow{}
	for _, r := range lhRows {
		byID[r.ID] = r
	}
	if byID["quality.deep"].Indent <= byID["quality"].Indent || byID["quality.deep.profile"].Indent <= byID["quality.deep"].Indent ||
		byID["extract"].Indent != byID["quality"].Indent || !strings.HasPrefix(byID["quality.deep.profile"].Label, "quality.deep.profile") ||
		!strings.Contains(byID["model.create_cluster"].Label, "setup") || !strings.Contains(byID["model.delete_cluster"].Label, "teardown") ||
		!strings.Contains(byID["quality"].Label, "4 tasks") {
		t.Errorf("lakehouse grid indents and labels: %+v", lhRows)
	}
	wantCollapsed := "task:extract=success group:quality=failed/false group:model=upstream_failed/true task:model.create_cluster=upstream_failed " +
		"task:model.train=upstream_failed task:model.delete_cluster=upstream_failed task:publish=upstream_failed"
	if got := rowsOf(lhCollapsed); got != wantCollapsed {
		t.Errorf("quality collapsed:\n%s\nwant\n%s", got, wantCollapsed)
	}
	if got := rowsOf(lhReloaded); got != wantCollapsed {
		t.Errorf("after a reload:\n%s\nwant\n%s", got, wantCollapsed)
	}
	if stored != `["quality"]` || focused != "quality" || afterExpand != "null" {
		t.Errorf("stored %q, focus on %q, after expanding %q", stored, focused, afterExpand)
	}
	if got := rowsOf(lhDeep); !strings.Contains(got, "group:quality.deep=success/false group:model") || strings.Contains(got, "quality.deep.profile") {
		t.Errorf("quality.deep collapsed: %s", got)
	}

	// Task groups in the graph: the group collapsed in the grid is collapsed
	// here too (one box); a toggle collapses its parent, whose box has its
	// tasks' summary state; clicking the box expands it again; Expand all.
	type graphState struct {
		Tasks, Groups, Toggles string
		Focus                  string
	}
	graphJS := `(() => ({
		tasks: [...document.querySelectorAll(".graph svg a.node[data-task]")].map((n) => n.dataset.task).sort().join(","),
		groups: [...document.querySelectorAll(".graph svg a.node.group")].map((n) => n.dataset.group + "=" + n.dataset.state + "/" + n.dataset.tasks + "/" + n.querySelector("text.sub").textContent).join(","),
		toggles: [...document.querySelectorAll("button.group-toggle")].map((b) => b.dataset.group + "=" + b.getAttribute("aria-expanded") + (b.disabled ? "/disabled" : "")).join(","),
		focus: document.activeElement.dataset.group || document.activeElement.id || document.activeElement.tagName,
	}))()`
	var gDeep, gQuality, gClicked, gAll graphState
	var teardownSub string
	lhGraph := base + "#/dags/lakehouse/graph?run=" + url.QueryEscape(lhBad.RunID)
	toggle := func(id string) string { return `button.group-toggle[data-group="` + id + `"]` }
	err = chromedp.Run(ctx,
		chromedp.Navigate(lhGraph),
		poll(`document.querySelectorAll(".graph svg a.node").length === 8 && !!document.querySelector('.graph svg a.node.group[data-group="quality.deep"]')`),
		chromedp.Evaluate(graphJS, &gDeep),
		chromedp.Evaluate(`document.querySelector('.graph svg a.node[data-task="model.delete_cluster"] text.sub').textContent`, &teardownSub),
		chromedp.Focus(toggle("quality")),
		chromedp.KeyEvent("\r"),
		poll(`document.querySelectorAll(".graph svg a.node").length === 6 && !!document.querySelector('.graph svg a.node.group[data-group="quality"]')`),
		chromedp.Evaluate(graphJS, &gQuality),
		chromedp.Evaluate(`document.activeElement.blur()`, nil),
		// Wide enough for the page's widest main column: the graph fits.
		chromedp.EmulateViewport(1440, 860),
		shot("graph-groups.png"),
		chromedp.EmulateViewport(1280, 860),
		// An SVG link has no click(): a click event, as a mouse makes.
		chromedp.Evaluate(`document.querySelector('.graph svg a.node.group[data-group="quality"]').dispatchEvent(new MouseEvent("click", {bubbles: true, cancelable: true}))`, nil),
		poll(`document.querySelectorAll(".graph svg a.node").length === 8 && !document.querySelector('.graph svg a.node.group[data-group="quality"]')`),
		chromedp.Evaluate(graphJS, &gClicked),
		click(`#graph-expand-all`),
		poll(`document.querySelectorAll(".graph svg a.node").length === 9 && !document.querySelector(".graph svg a.node.group")`),
		chromedp.Evaluate(graphJS, &gAll),
		chromedp.Evaluate(`String(localStorage.getItem("trellis.collapsed.lakehouse"))`, &afterExpand),
	)
	if err != nil {
		fatal("graph-groups", err)
	}
	model := "model.create_cluster,model.delete_cluster,model.train"
	if gDeep.Groups != "quality.deep=success/2/group · 2 tasks" || gDeep.Tasks != "extract,"+model+",publish,quality.check_nulls,quality.check_range" ||
		gDeep.Toggles != "quality=true,quality.deep=false,model=true" || teardownSub != "go · teardown" {
		t.Errorf("graph with quality.deep collapsed = %+v, teardown %q", gDeep, teardownSub)
	}
	if gQuality.Groups != "quality=failed/4/group · 4 tasks" || gQuality.Tasks != "extract,"+model+",publish" ||
		gQuality.Toggles != "quality=false,quality.deep=false/disabled,model=true" || gQuality.Focus != "quality" {
		t.Errorf("graph with quality collapsed = %+v", gQuality)
	}
	if gClicked.Groups != "quality.deep=success/2/group · 2 tasks" || gClicked.Toggles != "quality=true,quality.deep=false,model=true" || gClicked.Focus != "quality" {
		t.Errorf("graph after clicking quality's box = %+v", gClicked)
	}
	if gAll.Groups != "" || gAll.Toggles != "quality=true,quality.deep=true,model=true" || afterExpand != "null" || gAll.Focus != "graph-expand-all" {
		t.Errorf("graph after Expand all = %+v, stored %q", gAll, afterExpand)
	}

	// Gantt of the warehouse run.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse/runs/"+url.PathEscape(wh.RunID)),
		chromedp.WaitVisible(`.gantt`),
		poll(`document.querySelectorAll(".gantt a.b").length === 12`),
		shot("gantt.png"),
	)
	if err != nil {
		fatal("gantt", err)
	}

	// The calendar: a cell per day, coloured by its runs (the failed run's day
	// red), in the zone of the switch (UTC here).
	var cal Calendar
	s.do("GET", "/api/v1/dags/warehouse/calendar?tz=UTC", nil, &cal)
	failDay := failed.LogicalDate.UTC().Format(time.DateOnly)
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse/calendar"),
		poll(fmt.Sprintf(`document.querySelectorAll(".cal .day[data-state]:not([data-state=''])").length === %d && `+
			`document.querySelector('.cal .day[data-date="%s"]').dataset.state === "failed" && document.querySelectorAll(".cal .day.today").length === 1`, len(cal.Days), failDay)),
		shot("calendar.png"),
	)
	if err != nil {
		t.Fatalf("calendar (%d days with runs, failed on %s): %v", len(cal.Days), failDay, err)
	}
	if len(cal.Days) < 7 {
		t.Errorf("calendar has %d days with runs, want at least 7", len(cal.Days))
	}

	// Task durations: a row per task, a bar per finished try.
	var durs TaskDurations
	s.do("GET", "/api/v1/dags/warehouse/durations", nil, &durs)
	bars := 0
	for _, ts := range durs.Tasks {
		for _, d := range ts.Durations {
			if d != nil {
				bars++
			}
		}
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/warehouse/durations"),
		poll(fmt.Sprintf(`document.querySelectorAll(".durations-table tbody tr").length === 12 && document.querySelectorAll(".durations-table a.tbar").length === %d && `+
			`document.querySelectorAll('.durations-table tr[data-task="publish"] .slot.empty').length === 1`, bars)),
		shot("durations.png"),
	)
	if err != nil {
		t.Fatalf("task durations (%d bars): %v", bars, err)
	}

	// Why: the failed sensor's error; publish, not run, names its trigger
	// rule and the upstream task that failed; a deferred sensor's next poke;
	// a task that waits for it.
	var why struct{ Feed, Publish, Poke, Waiting string }
	fp := base + "#/dags/warehouse/runs/" + url.PathEscape(failed.RunID) + "/tasks/"
	vp := base + "#/dags/vendor_sftp/runs/" + url.PathEscape(vendor.RunID) + "/tasks/"
	err = chromedp.Run(ctx,
		chromedp.Navigate(fp+"partner_feed"),
		poll(`!!document.getElementById("why-error")`),
		text(`#why-error`, &why.Feed),
		chromedp.Navigate(fp+"publish"),
		poll(`!!document.getElementById("why") && document.getElementById("why").textContent.includes("upstream")`),
		text(`#why`, &why.Publish),
		chromedp.Navigate(vp+"file_landed"),
		poll(`!!document.getElementById("why-poke")`),
		text(`#why-poke`, &why.Poke),
		chromedp.Navigate(vp+"ingest"),
		poll(`!!document.getElementById("waiting")`),
		text(`#waiting`, &why.Waiting),
	)
	if err != nil {
		fatal("why", err)
	}
	if !strings.Contains(why.Feed, "checksum mismatch") || !strings.Contains(why.Publish, "trigger rule none_failed") ||
		!strings.Contains(why.Publish, "partner_feed (failed)") || !strings.Contains(why.Poke, "after 1 poke(s); next poke at ") ||
		!strings.Contains(why.Poke, " UTC") || why.Waiting != "upstream not done: file_landed" {
		t.Errorf("why = %+v", why)
	}

	// The assets page: an event posted through the API is listed with its
	// asset, and the asset's page lists its events.
	if res := s.do("POST", "/api/v1/assets/events", `{"uri":"s3://lake/orders","extra":{"rows":42}}`, nil); res.StatusCode != 201 {
		t.Fatalf("post an asset event: %d", res.StatusCode)
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/assets"),
		poll(`!!document.querySelector('#assets tr[data-asset="s3://lake/orders"]')`),
		poll(`document.querySelector('#assets tr[data-asset="s3://lake/orders"]').textContent.includes("1")`),
		waitClick(`#assets tr[data-asset="s3://lake/orders"] a`),
		poll(`location.hash.includes("uri=s3")`),
		poll(`document.querySelectorAll('#asset-events tbody tr').length === 1 && document.querySelector('#asset-events').textContent.includes('{"rows":42}')`),
		shot("assets.png"),
	)
	if err != nil {
		fatal("assets", err)
	}

	// The pools page.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/pools"),
		poll(`!!document.querySelector('tr[data-pool="warehouse_db"]')`),
		shot("pools.png"),
	)
	if err != nil {
		fatal("pools", err)
	}

	// A failed try: trigger flaky, open boom's failed try and its log, clear it,
	// and see it run again and succeed.
	fl := s.trigger("flaky", "")
	s.waitRun("flaky", fl.RunID, task.RunFailed)
	cell := `a.cell[data-task="boom"][data-run="` + fl.RunID + `"]`
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/flaky"),
		chromedp.WaitVisible(cell+`[data-state="failed"]`),
		click(cell),
		chromedp.WaitVisible(`#log`),
		poll(`document.getElementById("log").textContent.includes("about to fail")`),
		// The log opens at its tail; a short one has nothing earlier; the
		// whole log can be downloaded.
		poll(`document.getElementById("log-earlier") && document.getElementById("log-earlier").hidden`),
		poll(`document.getElementById("log-download").getAttribute("href").endsWith("/tasks/boom/tries/1/log/download")`),
		poll(`document.querySelector("dd.error") && document.querySelector("dd.error").textContent.includes("source not ready")`),
		poll(`document.getElementById("why-error") && document.getElementById("why-error").textContent === "source not ready"`),
		shot("task-log.png"),
		// In one step: a live refresh rebuilds the view (and its checkboxes).
		chromedp.Evaluate(`(() => { for (const id of ["clear-failed", "clear-down"]) document.getElementById(id).checked = true; document.getElementById("clear").click(); })()`, nil),
		poll(`!!document.querySelector('a[href$="/tries/2"]')`),
		click(`a[href$="/tries/2"]`),
		poll(`document.getElementById("log") && document.getElementById("log").textContent.includes("the source is ready")`),
	)
	if err != nil {
		fatal("failed-try-clear-rerun", err)
	}
	s.waitRun("flaky", fl.RunID, task.RunSuccess)

	// A mapped task: one grid row whose cell is the summary state of its
	// five instances (failed: element 3 failed); the cell opens the
	// drill-down, which lists the instances with their state, try and
	// duration, a link to each one's log and a button to clear it; the log
	// of one instance is its own; clearing the failed instance runs it
	// again; the graph draws the task with "[5]" and its summary state.
	mcell := `a.cell.mapped[data-task="square"][data-run="` + fan.RunID + `"]`
	var drill struct {
		Title, Counts, Range string
		States               []string
		Tries                []string
	}
	var instLog, instTitle, download string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/dags/fan"),
		poll(`!!document.querySelector('`+mcell+`[data-state="failed"][data-mapped="5"]') && document.querySelectorAll('table.grid tbody tr').length === 3`),
		poll(`document.querySelector('tr[data-task="square"] th').textContent.includes("[ ]")`),
		click(mcell),
		poll(`location.hash.endsWith("/tasks/square/instances") && document.querySelectorAll("table.instances tbody tr").length === 5`),
		chromedp.Evaluate(`(() => ({
			title: document.querySelector("main h1").textContent,
			counts: document.getElementById("instance-counts").textContent,
			range: document.getElementById("instances-range").textContent,
			states: [...document.querySelectorAll("table.instances tbody tr")].map((tr) => tr.dataset.mapIndex + "=" + tr.dataset.state),
			tries: [...document.querySelectorAll("table.instances tbody tr")].map((tr) => tr.children[2].textContent),
		}))()`, &drill),
		shot("mapped-instances.png"),
		click(`table.instances tr[data-map-index="2"] a.log-link`),
		poll(`location.hash.includes("map_index=2") && document.getElementById("log") && document.getElementById("log").textContent.includes("squaring 2 at map index 2")`),
		text(`main h1`, &instTitle),
		chromedp.Evaluate(`document.getElementById("log").textContent`, &instLog),
		chromedp.Evaluate(`document.getElementById("log-download").getAttribute("href")`, &download),
		chromedp.Navigate(base+"#/dags/fan/runs/"+url.PathEscape(fan.RunID)+"/tasks/square/instances"),
		waitClick(`table.instances tr[data-map-index="3"][data-state="failed"] button.clear-instance`),
		poll(`!!document.querySelector('table.instances tr[data-map-index="3"][data-state="success"]')`),
		poll(`document.getElementById("instance-counts").textContent === "5 success"`),
		chromedp.Navigate(base+"#/dags/fan/graph?run="+url.QueryEscape(fan.RunID)),
		poll(`!!document.querySelector('.graph svg a.node[data-task="square"][data-mapped="5"][data-state="success"]') && `+
			`document.querySelector('.graph svg a.node[data-task="square"] tspan.map-count').textContent === " [5]"`),
		shot("mapped-graph.png"),
	)
	if err != nil {
		fatal("mapped-task", err)
	}
	if drill.Title != "square [5]" || drill.Counts != "4 success, 1 failed" || drill.Range != "Instances 1–5 of 5" ||
		strings.Join(drill.States, ",") != "0=success,1=success,2=success,3=failed,4=success" || strings.Join(drill.Tries, ",") != "1/1,1/1,1/1,1/1,1/1" {
		t.Errorf("drill-down = %+v", drill)
	}
	if instTitle != "square[2]" || !strings.Contains(instLog, "squaring 2 at map index 2") || strings.Contains(instLog, "squaring 3") ||
		!strings.HasSuffix(download, "/tasks/square/tries/1/log/download?map_index=2") {
		t.Errorf("instance log: title %q, download %q, log %q", instTitle, download, instLog)
	}
	var sq3 TryList
	s.do("GET", runPath("fan", fan.RunID)+"/tasks/square/tries?map_index=3", nil, &sq3)
	if len(sq3.Tries) != 2 || sq3.Tries[1].State != task.StateSuccess {
		t.Errorf("square[3] after its clear in the UI: %+v", sq3)
	}

	// The audit log shows the UI's actions.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"#/audit"),
		poll(`[...document.querySelectorAll("main td code")].some(c => c.textContent === "clear")`),
		shot("audit.png"),
	)
	if err != nil {
		fatal("audit", err)
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
		fatal("phone", err)
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
