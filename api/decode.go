package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxBody bounds every request body.
const maxBody = 64 << 10

// decodeJSON reads the body strictly into dst (a pointer to a struct):
// JSON content type, at most maxBody bytes, one object, no unknown field,
// no null, every value of the field's type. Field problems are a 422 that
// names each field.
func decodeJSON(c echo.Context, dst any) error {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != echo.MIMEApplicationJSON && mt != "application/merge-patch+json") {
		return ErrMediaType
	}
	if r.ContentLength > maxBody {
		return ErrBodyTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrBodyTooLarge
		}
		return about(ErrBadRequest, "cannot read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return about(ErrBadRequest, "the request body is empty")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return about(ErrBadRequest, "malformed JSON at byte %d", se.Offset)
		}
		return about(ErrBadRequest, "the request body must be a JSON object")
	}
	known := jsonFields(reflect.TypeOf(dst).Elem())
	fe := fieldErrors{}
	for k, v := range raw {
		if _, ok := known[k]; !ok {
			fe.add(k, "unknown field")
			continue
		}
		if string(bytes.TrimSpace(v)) == "null" {
			fe.add(k, "null is not allowed: leave the field out or give a value")
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &ValidationError{Fields: map[string]string{te.Field: "must be " + jsonKind(te.Type)}}
		}
		return about(ErrBadRequest, "the request body does not decode")
	}
	if dec.More() {
		return about(ErrBadRequest, "trailing data after the JSON object")
	}
	return nil
}

// jsonFields returns the JSON names of a struct's fields, following
// embedded structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return fmt.Sprintf("a %s", t.Kind())
}
