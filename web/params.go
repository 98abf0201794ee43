package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/trellisdag/trellis/dag"
)

// FieldError is one bad field of a request, in Error.Fields: a conf that does
// not fit the DAG's params has one per bad param.
type FieldError struct {
	// Field is "conf.<param>", or "conf" for the conf as a whole.
	Field string `json:"field"`
	// Message says what is wrong with it: "must be at most 31, got 40".
	Message string `json:"message"`
}

// getParams serves the DAG's params as a JSON Schema (draft 2020-12) of the
// conf object: what the UI builds its trigger form from.
func (s *Server) getParams(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(d.ParamsSchema(), '\n'))
	return err
}

// checkConf runs in front of triggerRun. A well-formed trigger request whose
// conf does not fit the DAG's params is answered here: 400 invalid_conf, the
// first bad field in error.field and every one in error.fields, audited as
// triggerRun audits it. Every other request, good or bad, reaches next with
// its body unchanged (next checks the conf again, with the same rule, when it
// creates the run).
func (s *Server) checkConf(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) error {
		d, err := s.dagOf(r)
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" || r.Body == nil {
			return next(w, r, p)
		}
		limit := s.cfg.MaxBodyBytes
		buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		body := r.Body
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), body), body}
		if err != nil || int64(len(buf)) > limit {
			return next(w, r, p)
		}
		var req TriggerRequest
		dec := json.NewDecoder(bytes.NewReader(buf))
		dec.DisallowUnknownFields()
		if dec.Decode(&req) != nil {
			return next(w, r, p)
		}
		if string(req.Conf) == "null" {
			req.Conf = nil
		}
		_, err = d.ResolveConf(req.Conf)
		var ce *dag.ConfError
		if !errors.As(err, &ce) || len(ce.Fields) == 0 {
			return next(w, r, p)
		}
		e := confError(ce)
		detail := ""
		if len(req.Conf) > 0 {
			detail = "conf " + compactJSON(req.Conf)
		}
		s.audit(r, p, "trigger", d.ID(), req.RunID, "", detail, e)
		return e
	}
}

// confError is the API error of a conf that does not fit the DAG's params.
func confError(ce *dag.ConfError) *Error {
	e := errorf(http.StatusBadRequest, CodeInvalidConf, "%s", strings.ReplaceAll(ce.Error(), "\n", "; "))
	for _, f := range ce.Fields {
		field := "conf"
		if f.Param != "" {
			field = "conf." + f.Param
		}
		e.Fields = append(e.Fields, FieldError{Field: field, Message: f.Message})
	}
	e.Field = e.Fields[0].Field
	return e
}
