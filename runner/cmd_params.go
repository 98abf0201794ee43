package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/trellisdag/trellis/dag"
)

// cmdDagsParams prints a DAG's params: a table, or with --json the JSON Schema
// that the API serves and the UI's trigger form is built from.
func cmdDagsParams(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags params")
	asJSON := f.fs.Bool("json", false, "print the params as a JSON Schema (draft 2020-12) of the conf object")
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	out := r.cfg.Stdout
	if *asJSON {
		var b bytes.Buffer
		if err := json.Indent(&b, d.ParamsSchema(), "", "  "); err != nil {
			return err
		}
		b.WriteByte('\n')
		_, err := out.Write(b.Bytes())
		return err
	}
	ps := d.ParamDecls()
	if len(ps) == 0 {
		fmt.Fprintf(out, "DAG %s declares no params: its runs take no conf.\n", d.ID())
		return nil
	}
	fmt.Fprintf(out, "Params of DAG %s: set them with dags trigger %s --conf '{\"%s\": ...}'\n\n", d.ID(), d.ID(), ps[0].Name)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARAM\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
	for _, p := range ps {
		def := "-"
		switch {
		case p.Required:
			def = "(required)"
		case p.Default != nil:
			b, _ := json.Marshal(p.Default)
			def = string(b)
		}
		desc := p.Description
		if desc == "" {
			desc = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Name, paramType(p), def, orDash(paramAllowed(p)), desc)
	}
	return w.Flush()
}

// paramType is a param's type for people: "integer", "array of string", "any".
func paramType(p dag.Param) string {
	t := p.ValueType()
	switch {
	case t == dag.ParamAny:
		return "any"
	case t == dag.ParamArray && p.Items != dag.ParamAny:
		return "array of " + string(p.Items)
	}
	return string(t)
}

// paramAllowed is a param's enum or range: "eu|us|apac", "1 to 31", ">= 0".
func paramAllowed(p dag.Param) string {
	var parts []string
	if len(p.Enum) > 0 {
		vs := make([]string, len(p.Enum))
		for i, e := range p.Enum {
			b, _ := json.Marshal(e)
			vs[i] = string(b)
		}
		parts = append(parts, "one of "+strings.Join(vs, ", "))
	}
	num := func(f *float64) string { b, _ := json.Marshal(*f); return string(b) }
	switch {
	case p.Minimum != nil && p.Maximum != nil:
		parts = append(parts, num(p.Minimum)+" to "+num(p.Maximum))
	case p.Minimum != nil:
		parts = append(parts, ">= "+num(p.Minimum))
	case p.Maximum != nil:
		parts = append(parts, "<= "+num(p.Maximum))
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
