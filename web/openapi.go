package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// The OpenAPI 3 document is built from the route table and the Go types of the
// bodies, so it always matches what the server serves.

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

var pathParamDoc = map[string]string{
	"dag":  "DAG id",
	"run":  "run id (URL-escaped)",
	"task": "task id",
	"try":  "try number, from 1",
}

type schemaGen struct {
	defs map[string]any
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case strings.HasPrefix(t.PkgPath(), "k8s.io/"):
		return map[string]any{"type": "object", "description": "a Kubernetes " + t.Name() + " object"}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "any JSON value"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schema(t.Elem())
		if _, ref := s["$ref"]; ref {
			return s
		}
		s["nullable"] = true
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{"description": "any JSON value"}
	case reflect.Struct:
		name := t.Name()
		if _, ok := g.defs[name]; !ok && name != "" {
			g.defs[name] = nil // placeholder against recursion
			g.defs[name] = g.object(t)
		}
		if name == "" {
			return g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.schema(f.Type)
			if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func (s *Server) openAPI() map[string]any {
	g := &schemaGen{defs: map[string]any{}}
	errRef := g.schema(reflect.TypeFor[ErrorBody]())
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
	}
	paths := map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{"operationId": rt.op, "summary": rt.summary}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"description": pathParamDoc[m[1]], "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.doc,
				"schema": map[string]any{"type": q.typ}})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.body))}}}
		}
		status := rt.status
		if status == 0 {
			status = http.StatusOK
		}
		var content map[string]any
		switch {
		case rt.media != "":
			content = map[string]any{rt.media: map[string]any{"schema": map[string]any{"type": "string"}}}
		case rt.resp != nil:
			content = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.resp))}}
		}
		resps := map[string]any{itoa(status): map[string]any{"description": "success", "content": content}}
		resps["default"] = errResp("an error object")
		if !rt.public {
			resps["401"] = errResp("no or invalid credentials")
			op["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{"session": []any{}}}
		}
		if rt.write() {
			resps["400"] = errResp("a bad parameter; error.field names it")
			resps["403"] = errResp("read-only role, or a cross-site request")
			resps["413"] = errResp("request body too large")
		}
		op["responses"] = resps
		p, _ := paths[rt.path].(map[string]any)
		if p == nil {
			p = map[string]any{}
			paths[rt.path] = p
		}
		p[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "trellis API", "version": "1",
			"description": "The REST API of a trellis binary: DAGs, runs, task instances, tries, logs, results and actions."},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.defs,
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie},
			},
		},
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	s.openAPIOnce.Do(func() { s.openAPIDoc, s.openAPIErr = json.MarshalIndent(s.openAPI(), "", "  ") })
	if s.openAPIErr != nil {
		return fmt.Errorf("openapi document: %w", s.openAPIErr)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, err := w.Write(s.openAPIDoc)
	return err
}
