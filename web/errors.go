package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the API's error objects.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidConf      = "invalid_conf"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeCSRF             = "csrf_rejected"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "payload_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// Error is an API error: its HTTP status and the error object's fields.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the parameter or body field that is wrong, when one is.
	Field string `json:"field,omitempty"`
	// Fields lists every bad field when there are several (a conf that does
	// not fit the DAG's params: one per bad param); Field is the first.
	Fields []FieldError `json:"fields,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// ErrorBody is the JSON of every error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badParam(field, format string, args ...any) *Error {
	e := errorf(http.StatusBadRequest, CodeBadRequest, format, args...)
	e.Field = field
	return e
}

func notFound(format string, args ...any) *Error {
	return errorf(http.StatusNotFound, CodeNotFound, format, args...)
}

// asError turns any error into an API error; errors that are not *Error are
// internal and their text is not shown to the client.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(http.StatusInternalServerError, CodeInternal, "internal error; see the server's log")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}
