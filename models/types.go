package models

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
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
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("models: cannot scan %T into StringList", src)
	}
	if len(b) == 0 {
		*l = nil
		return nil
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return errors.New("models: StringList column is not a JSON array")
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
	b, err := json.Marshal(map[string]string(m))
	return string(b), err
}

// Scan implements sql.Scanner.
func (m *StringMap) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*m = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("models: cannot scan %T into StringMap", src)
	}
	if len(b) == 0 {
		*m = nil
		return nil
	}
	out := map[string]string{}
	if err := json.Unmarshal(b, &out); err != nil {
		return errors.New("models: StringMap column is not a JSON object")
	}
	*m = out
	return nil
}
