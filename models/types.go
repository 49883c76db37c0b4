package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// StringList is a list of strings stored as a JSON array in one text
// column, so the same schema works on SQLite and PostgreSQL.
type StringList []string

// Value implements driver.Valuer.
func (l StringList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	return jsonValue([]string(l))
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	var out []string
	if err := scanJSON(src, &out, "StringList"); err != nil {
		return err
	}
	*l = out
	return nil
}

// StringMap is a string map stored as a JSON object in one text column.
type StringMap map[string]string

// Value implements driver.Valuer.
func (m StringMap) Value() (driver.Value, error) {
	if m == nil {
		return "{}", nil
	}
	return jsonValue(map[string]string(m))
}

// Scan implements sql.Scanner.
func (m *StringMap) Scan(src any) error {
	var out map[string]string
	if err := scanJSON(src, &out, "StringMap"); err != nil {
		return err
	}
	*m = out
	return nil
}

func jsonValue(v any) (driver.Value, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// scanJSON decodes a JSON text column; NULL and "" leave dst at its zero.
func scanJSON(src, dst any, what string) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("models: cannot scan %T into %s", src, what)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("models: %s column holds no valid JSON", what)
	}
	return nil
}
