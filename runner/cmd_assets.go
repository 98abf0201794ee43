package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellisdag/trellis/internal/assets"
)

func cmdAssetsList(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "assets list")
	if _, err := f.parse(args); err != nil {
		return err
	}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	var as assets.Store // nil without a database: a nil *store.Store in it would not be
	if st != nil {
		as = st
	}
	list, err := assets.List(ctx, as, r.dags)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(r.cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ASSET\tPRODUCERS\tCONSUMERS\tEVENTS\tLAST EVENT")
	for _, a := range list {
		last := "-"
		if !a.LastEvent.IsZero() {
			last = a.LastEvent.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", a.URI, orDash(strings.Join(a.Producers, ", ")), orDash(strings.Join(a.Consumers, ", ")), a.Events, last)
	}
	return w.Flush()
}

func cmdAssetsEvents(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "assets events")
	limit := f.fs.Int("limit", 50, "events to print, newest first (1-1000)")
	pos, err := f.parse(args, "[uri]")
	if err != nil { // the URI is optional
		if pos, err = f.parse(args); err != nil {
			return err
		}
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("assets events: --limit %d: want 1-1000", *limit)
	}
	uri := ""
	if len(pos) > 0 {
		uri = pos[0]
	}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	defer st.Close()
	evs, total, err := st.AssetEvents(ctx, uri, *limit, 0)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(r.cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tASSET\tAT\tSOURCE\tEXTRA")
	for _, e := range evs {
		src := e.Source
		if e.SourceDAG != "" {
			src = fmt.Sprintf("%s.%s run %s try %d", e.SourceDAG, e.SourceTask, e.SourceRun, e.SourceTry)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.URI, e.Created.Format(time.RFC3339), orDash(src), orDash(string(e.Extra)))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if total > len(evs) {
		fmt.Fprintf(r.cfg.Stdout, "(%d of %d events; --limit shows more)\n", len(evs), total)
	}
	return nil
}

func cmdAssetsPost(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "assets post")
	extra := f.fs.String("extra", "", "a JSON object stored with the event")
	pos, err := f.parse(args, "<uri>")
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if *extra != "" {
		raw = json.RawMessage(*extra)
	}
	var bad *assets.InvalidError
	if err := assets.Check(pos[0], raw); errors.As(err, &bad) {
		if bad.Field == "extra" {
			return usagef("assets post: --extra: %v", bad.Err)
		}
		return usagef("assets post: %v", bad.Err)
	}
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := assets.Post(ctx, st, pos[0], raw, "cli:"+cliUser(r), time.Now())
	r.audit(ctx, st, "post_asset_event", "", "", "", pos[0], err)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Stdout, "Recorded event %d of asset %s; a running scheduler creates the runs it triggers within a second.\n", id, pos[0])
	return nil
}
