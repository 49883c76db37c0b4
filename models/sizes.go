package models

import (
	"fmt"
	"reflect"
	"unicode/utf8"

	"gorm.io/gorm/schema"
)

// SizeError is a write refused because a value is longer than its column
// (PostgreSQL would refuse it with an error, SQLite would store it: both
// unlike what the API promised). Column is the column's name.
type SizeError struct {
	Column string
	Max    int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("%s: must be at most %d characters", e.Column, e.Max)
}

// checkSizes refuses a row with a string longer than its column's size
// (counted in characters, as varchar(n) counts them): the one place that
// knows the columns says what fits, whoever validated the values before.
func (s *Store) checkSizes(r any) error {
	sch, err := schema.Parse(r, &s.schemas, s.db.NamingStrategy)
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(r)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	for _, f := range sch.Fields {
		if f.Size <= 0 || f.DBName == "" || f.FieldType.Kind() != reflect.String {
			continue
		}
		v := rv.FieldByIndex(f.StructField.Index).String()
		if len(v) > f.Size && utf8.RuneCountInString(v) > f.Size {
			return &SizeError{Column: f.DBName, Max: f.Size}
		}
	}
	return nil
}
