package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
)

// The OpenAPI document is generated from the route table that also
// registers the handlers, and its schemas from the Go types the handlers
// decode and encode, so it cannot drift from the code. Response schemas
// forbid additional properties, so a test that validates real responses
// against the document catches any field the document does not name.

type obj = map[string]any

type openapiBuilder struct {
	schemas obj
}

func (s *server) openapi(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, s.doc)
}

func (s *server) openapiDoc() []byte {
	b := &openapiBuilder{schemas: obj{}}
	b.schemas["Error"] = b.schema(reflect.TypeOf(ErrorBody{}), false)
	paths := obj{}
	for _, r := range s.routes {
		p := openapiPath(r.path)
		item, _ := paths[p].(obj)
		if item == nil {
			item = obj{}
			paths[p] = item
		}
		item[strings.ToLower(r.method)] = b.operation(r)
	}
	doc := obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":       "fsplane platform API",
			"version":     "v1",
			"description": "Trunks, extensions, sofia profiles, provider presets and ranges for FreeSWITCH. Authenticate with Authorization: Bearer <token>; each operation names its scope in x-fsplane-scope (admin carries all).",
		},
		"paths": paths,
		"components": obj{
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}},
			"schemas":         b.schemas,
		},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("api: openapi document does not marshal: %v", err)) // a programming error
	}
	return out
}

func (b *openapiBuilder) operation(r route) obj {
	op := obj{
		"summary":     r.summary,
		"operationId": operationID(r),
		"responses":   obj{},
	}
	var params []any
	for _, seg := range strings.Split(r.path, "/") {
		if strings.HasPrefix(seg, ":") {
			desc := "numeric id"
			switch seg {
			case ":name":
				desc = "provider name"
			case ":id":
				if strings.Contains(r.path, "/trunks/") || strings.Contains(r.path, "/profiles/") {
					desc = "numeric id or name"
				}
			}
			params = append(params, obj{"name": seg[1:], "in": "path", "required": true,
				"description": desc, "schema": obj{"type": "string"}})
		}
	}
	for _, q := range r.query {
		sch := obj{"type": q.typ}
		if len(q.enum) > 0 {
			sch["enum"] = q.enum
		}
		params = append(params, obj{"name": q.name, "in": "query", "required": false, "description": q.desc, "schema": sch})
	}
	if slices.Contains(r.errors, http.StatusPreconditionFailed) {
		params = append(params, obj{"name": "If-Match", "in": "header", "required": false,
			"description": `the ETag ("<version>") you read; 412 when it is no longer current`, "schema": obj{"type": "string"}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if r.scope != "" {
		op["security"] = []any{obj{"bearer": []any{}}}
		op["x-fsplane-scope"] = r.scope
		op["description"] = "Needs a token with scope " + r.scope + " (or admin)."
	} else {
		op["security"] = []any{}
	}
	if r.in != nil {
		sch := b.schema(reflect.TypeOf(r.in), true)
		content := obj{"application/json": obj{"schema": sch}}
		if r.method == http.MethodPatch {
			content["application/merge-patch+json"] = obj{"schema": sch}
		}
		op["requestBody"] = obj{"required": true, "content": content}
	}
	responses := op["responses"].(obj)
	ok := obj{"description": http.StatusText(r.status)}
	switch {
	case r.out != nil:
		ok["content"] = obj{"application/json": obj{"schema": b.schema(reflect.TypeOf(r.out), false)}}
	case r.path == "/api/v1/openapi.json":
		ok["content"] = obj{"application/json": obj{"schema": obj{"type": "object"}}}
	case r.raw:
		// Text whose type depends on the request (format=ufw|nft|acl|json,
		// xml-curl's XML).
		ok["content"] = obj{"*/*": obj{"schema": obj{}}}
	}
	if r.method == http.MethodGet && strings.Contains(r.path, ":") && r.out != nil {
		ok["headers"] = obj{"ETag": obj{"description": "the row's version", "schema": obj{"type": "string"}}}
	}
	responses[strconv.Itoa(r.status)] = ok
	codes := append([]int(nil), r.errors...)
	if r.scope != "" {
		// Authenticated routes need the database: 503 while it is down.
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable)
	}
	codes = append(codes, http.StatusInternalServerError)
	for _, code := range codes {
		resp := obj{
			"description": http.StatusText(code),
			"content":     obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/Error"}}},
		}
		if code == http.StatusServiceUnavailable && r.scope != "" {
			resp["headers"] = obj{"Retry-After": obj{
				"description": "seconds to wait when the database is unavailable", "schema": obj{"type": "integer"}}}
		}
		responses[strconv.Itoa(code)] = resp
	}
	return op
}

func operationID(r route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.method))
	for _, seg := range strings.Split(r.path, "/") {
		if seg == "" || seg == "api" || seg == "v1" {
			continue
		}
		seg = strings.TrimPrefix(seg, ":")
		seg = strings.NewReplacer(".", "", "-", "").Replace(seg)
		b.WriteString(strings.ToUpper(seg[:1]) + seg[1:])
	}
	return b.String()
}

var timeType = reflect.TypeOf(time.Time{})

// schema describes t. Structs become named components; input structs
// (pointer fields) have no required properties.
func (b *openapiBuilder) schema(t reflect.Type, input bool) obj {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		nullable = !input
	}
	var s obj
	switch {
	case t == timeType:
		s = obj{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.String:
		s = obj{"type": "string"}
	case t.Kind() == reflect.Bool:
		s = obj{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s = obj{"type": "integer"}
		if t.Kind() >= reflect.Uint {
			s["minimum"] = 0
		}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		s = obj{"type": "number"}
	case t.Kind() == reflect.Slice:
		s = obj{"type": "array", "items": b.schema(t.Elem(), input)}
	case t.Kind() == reflect.Map:
		s = obj{"type": "object", "additionalProperties": b.schema(t.Elem(), input)}
	case t.Kind() == reflect.Struct:
		name := schemaName(t)
		if _, ok := b.schemas[name]; !ok {
			b.schemas[name] = obj{} // placeholder against recursion
			b.schemas[name] = b.structSchema(t, input)
		}
		s = obj{"$ref": "#/components/schemas/" + name}
	default:
		s = obj{}
	}
	if nullable {
		if _, isRef := s["$ref"]; isRef {
			s = obj{"allOf": []any{s}, "nullable": true}
		} else {
			s["nullable"] = true
		}
	}
	return s
}

func (b *openapiBuilder) structSchema(t reflect.Type, input bool) obj {
	props := obj{}
	var req []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = b.schema(f.Type, input)
			if !input && !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				req = append(req, name)
			}
		}
	}
	walk(t)
	s := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		sort.Strings(req)
		s["required"] = req
	}
	return s
}

// schemaName turns trunkOut into TrunkOut, esl.NodeStatus into NodeStatus.
func schemaName(t reflect.Type) string {
	n := t.Name()
	if n == "" {
		return "Anonymous"
	}
	r := []rune(n)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}
