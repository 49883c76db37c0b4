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
	"unicode/utf8"

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
	if err := checkEncoding(body, raw); err != nil {
		return err
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

// checkEncoding refuses what encoding/json would silently repair: bytes
// that are not UTF-8 (a 400: the body is not JSON, RFC 8259 §8.1) and
// \u escapes of lone UTF-16 surrogates (a 422 naming the field). Both
// would otherwise be stored as U+FFFD: not the value the client sent.
func checkEncoding(body []byte, raw map[string]json.RawMessage) error {
	if !utf8.Valid(body) {
		// Which fields hold the bad bytes, where that can be told.
		fe := fieldErrors{}
		for k, v := range raw {
			if !utf8.Valid(v) {
				fe.add(k, "is not valid UTF-8")
			}
		}
		off := 0
		for off < len(body) {
			r, n := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return &EncodingError{Offset: off, Fields: fe}
	}
	fe := fieldErrors{}
	for k, v := range raw {
		if esc, ok := loneSurrogate(v); ok {
			fe.add(k, "contains the lone UTF-16 surrogate %s, which is not a character: send the character itself or a valid surrogate pair", esc)
		}
	}
	return fe.err()
}

// loneSurrogate finds the first \uD800-\uDFFF escape inside a JSON string
// that is not part of a high-low pair, and returns it as written.
func loneSurrogate(v []byte) (string, bool) {
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(v) && v[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(v, i+2)
			if !ok {
				continue // a syntax error, which the decoder reports
			}
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return string(v[i : i+6]), true
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := hex4(v, i+8)
				if i+7 >= len(v) || v[i+6] != '\\' || v[i+7] != 'u' || !ok || lo < 0xDC00 || lo > 0xDFFF {
					return string(v[i : i+6]), true
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return "", false
}

func hex4(v []byte, at int) (rune, bool) {
	if at+4 > len(v) {
		return 0, false
	}
	var r rune
	for _, c := range v[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
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
