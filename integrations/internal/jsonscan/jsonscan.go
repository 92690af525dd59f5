// Package jsonscan reads webhook bodies in one validating pass without building a document: Object
// splits a JSON object into its fields and Array an array into its items, as sub-slices of the input,
// so a parser reads only the dozen fields it needs, each with its own error message, and nothing is
// copied that is not kept.
//
// It replaces encoding/json's Unmarshal into map[string]json.RawMessage (or a struct of RawMessage
// fields), which scans the document twice (validation, then decoding), copies every value and
// allocates every key. Validity is exactly json.Valid's (a fuzz target checks that), and field lookup
// follows encoding/json's rules for the kind of target it replaces (see Fields.Get and Fields.Fold).
package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit, so that the same documents are valid.
const maxDepth = 10000

// Kind is the JSON type of a value.
type Kind byte

const (
	Invalid Kind = iota // empty or not JSON
	Null
	Bool
	Number
	String
	ObjectKind
	ArrayKind
)

var kindNames = [...]string{Invalid: "nothing", Null: "null", Bool: "boolean", Number: "number", String: "string",
	ObjectKind: "object", ArrayKind: "array"}

// String names the kind as error messages say it ("a string, got number").
func (k Kind) String() string { return kindNames[k] }

// KindOf tells the kind of a value by its first byte. It does not validate: it is meant for values
// that Object or Array cut from a document they validated.
func KindOf(raw []byte) Kind {
	raw = trim(raw)
	if len(raw) == 0 {
		return Invalid
	}
	switch raw[0] {
	case '{':
		return ObjectKind
	case '[':
		return ArrayKind
	case '"':
		return String
	case 't', 'f':
		return Bool
	case 'n':
		return Null
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return Number
	}
	return Invalid
}

// IsNull reports whether a value is JSON null or absent (empty).
func IsNull(raw []byte) bool {
	k := KindOf(raw)
	return k == Null || k == Invalid
}

// SyntaxError is invalid JSON: what was wrong and at which byte offset.
type SyntaxError struct {
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.Offset) }

// Field is one member of an object. Key is the decoded name (a sub-slice of the input unless it held
// escapes); Value is the raw value without surrounding whitespace.
type Field struct {
	Key   []byte
	Value []byte
}

// Fields are an object's members in document order, duplicates included.
type Fields []Field

// Get returns the value of name as encoding/json decodes an object into a map: exact key match, the
// last one winning.
func (fs Fields) Get(name string) (value []byte, found bool) {
	for i := len(fs) - 1; i >= 0; i-- {
		if string(fs[i].Key) == name {
			return fs[i].Value, true
		}
	}
	return nil, false
}

// Fold returns the value of name as encoding/json decodes an object into a struct field tagged name
// (when no other field's name differs from it only in case): the key may differ in case (Unicode
// case folding, as bytes.EqualFold), the last match winning.
func (fs Fields) Fold(name string) (value []byte, found bool) {
	for i := len(fs) - 1; i >= 0; i-- {
		if k := fs[i].Key; string(k) == name || bytes.EqualFold(k, []byte(name)) {
			return fs[i].Value, true
		}
	}
	return nil, false
}

// Valid reports whether data is one valid JSON value, as json.Valid does.
func Valid(data []byte) bool {
	_, _, _, err := document(data, 0, nil, nil)
	return err == nil
}

// Object validates data as one JSON value and, when it is an object, appends its fields to dst.
// A valid document of another kind gives a *KindError saying what it is, so callers can word their
// own message.
func Object(data []byte, dst Fields) (Fields, error) {
	fields, _, isObject, err := document(data, '{', dst, nil)
	switch {
	case err != nil:
		return nil, err
	case !isObject:
		return nil, &KindError{Want: ObjectKind, Got: KindOf(data)}
	}
	return fields, nil
}

// Array validates data as one JSON value and, when it is an array, appends its items (raw, without
// surrounding whitespace) to dst; another kind gives a *KindError.
func Array(data []byte, dst [][]byte) ([][]byte, error) {
	_, items, isArray, err := document(data, '[', nil, dst)
	switch {
	case err != nil:
		return nil, err
	case !isArray:
		return nil, &KindError{Want: ArrayKind, Got: KindOf(data)}
	}
	return items, nil
}

// document validates data as one JSON value with optional whitespace around it. When the value
// opens with open ('{' or '['), its fields or items are appended to fields or items and opened is
// true; any other value is only validated (open 0 matches nothing). Slices go in and out by value,
// not through a callback, so that a caller's buffer can stay on its stack.
func document(data []byte, open byte, fields Fields, items [][]byte) (_ Fields, _ [][]byte, opened bool, err error) {
	s := scanner{data: data}
	s.skipSpace()
	opened = open != 0 && s.pos < len(data) && data[s.pos] == open
	switch {
	case opened && open == '{':
		fields, err = s.object(0, true, fields)
	case opened:
		items, err = s.array(0, true, items)
	default:
		err = s.value(0)
	}
	if err != nil {
		return nil, nil, opened, err
	}
	s.skipSpace()
	if s.pos != len(data) {
		return nil, nil, opened, s.fail("invalid character " + quoteChar(data[s.pos]) + " after top-level value")
	}
	return fields, items, opened, nil
}

// KindError is a valid JSON document of the wrong kind (Object given an array, …).
type KindError struct{ Want, Got Kind }

func (e *KindError) Error() string { return fmt.Sprintf("want a JSON %s, got %s", e.Want, e.Got) }

// StringValue decodes a JSON string value (raw as Object or Array cut it). Strings without escapes
// and with valid UTF-8, which is nearly all of them in a webhook, are their own bytes and cost one
// copy; any other goes through encoding/json, which also replaces invalid UTF-8 as it always has.
func StringValue(raw []byte) (string, error) {
	raw = trim(raw)
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		body := raw[1 : n-1]
		if plainString(body) {
			return string(body), nil
		}
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// plainString reports whether a string's content needs no decoding: no escape, quote or control
// byte, and valid UTF-8.
func plainString(body []byte) bool {
	ascii := true
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return ascii || utf8.Valid(body)
}

func trim(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanner is a recursive-descent JSON validator over data from pos.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) fail(msg string) error { return &SyntaxError{Offset: s.pos, msg: msg} }

func (s *scanner) eof() error {
	return &SyntaxError{Offset: len(s.data), msg: "unexpected end of JSON input"}
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
}

// value validates the value starting at pos (no leading whitespace) and moves past it.
func (s *scanner) value(depth int) error {
	if s.pos >= len(s.data) {
		return s.eof()
	}
	switch c := s.data[s.pos]; c {
	case '{':
		_, err := s.object(depth, false, nil)
		return err
	case '[':
		_, err := s.array(depth, false, nil)
		return err
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return s.number()
		}
		return s.fail("invalid character " + quoteChar(c) + " looking for beginning of value")
	}
}

// object validates the object at pos and, when collect, appends its fields to dst (nested objects
// are only validated).
func (s *scanner) object(depth int, collect bool, dst Fields) (Fields, error) {
	if depth++; depth > maxDepth {
		return nil, s.fail("exceeded max depth")
	}
	s.pos++ // {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return dst, nil
	}
	for {
		if s.pos >= len(s.data) {
			return nil, s.eof()
		}
		if s.data[s.pos] != '"' {
			return nil, s.fail("invalid character " + quoteChar(s.data[s.pos]) + " looking for beginning of object key string")
		}
		keyStart := s.pos
		escaped, err := s.str()
		if err != nil {
			return nil, err
		}
		var key []byte
		if collect {
			key = s.data[keyStart+1 : s.pos-1]
			if escaped || !plainString(key) { // escapes, or invalid UTF-8 that decoding replaces
				k, err := StringValue(s.data[keyStart:s.pos])
				if err != nil {
					return nil, &SyntaxError{Offset: keyStart, msg: "invalid object key"}
				}
				key = []byte(k)
			}
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return nil, s.eof()
		}
		if s.data[s.pos] != ':' {
			return nil, s.fail("invalid character " + quoteChar(s.data[s.pos]) + " after object key")
		}
		s.pos++
		s.skipSpace()
		valueStart := s.pos
		if err := s.value(depth); err != nil {
			return nil, err
		}
		if collect {
			dst = append(dst, Field{Key: key, Value: s.data[valueStart:s.pos]})
		}
		if done, err := s.next('}', "object key:value pair"); err != nil {
			return nil, err
		} else if done {
			return dst, nil
		}
	}
}

// array validates the array at pos and, when collect, appends its items to dst.
func (s *scanner) array(depth int, collect bool, dst [][]byte) ([][]byte, error) {
	if depth++; depth > maxDepth {
		return nil, s.fail("exceeded max depth")
	}
	s.pos++ // [
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return dst, nil
	}
	for {
		start := s.pos
		if err := s.value(depth); err != nil {
			return nil, err
		}
		if collect {
			dst = append(dst, s.data[start:s.pos])
		}
		if done, err := s.next(']', "array element"); err != nil {
			return nil, err
		} else if done {
			return dst, nil
		}
	}
}

// next moves past what follows an object member or array element: a comma (and the space after it),
// or closing, which ends the container (done). Its error names the member, after.
func (s *scanner) next(closing byte, after string) (done bool, err error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, s.eof()
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		s.skipSpace()
		return false, nil
	case closing:
		s.pos++
		return true, nil
	}
	return false, s.fail("invalid character " + quoteChar(s.data[s.pos]) + " after " + after)
}

// str validates the string at pos and moves past its closing quote; escaped reports a backslash.
func (s *scanner) str() (escaped bool, err error) {
	s.pos++ // opening quote
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.data) {
				return false, s.eof()
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				s.pos += 2
				for range 4 {
					if s.pos >= len(s.data) {
						return false, s.eof()
					}
					if !isHex(s.data[s.pos]) {
						return false, s.fail("invalid character " + quoteChar(s.data[s.pos]) + " in \\u hexadecimal character escape")
					}
					s.pos++
				}
			default:
				s.pos++
				return false, s.fail("invalid character " + quoteChar(s.data[s.pos]) + " in string escape code")
			}
		case c < 0x20:
			return false, s.fail("invalid character " + quoteChar(c) + " in string literal")
		default:
			s.pos++
		}
	}
	return false, s.eof()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) literal(word string) error {
	for i := range len(word) {
		if s.pos >= len(s.data) {
			return s.eof()
		}
		if s.data[s.pos] != word[i] {
			return s.fail("invalid character " + quoteChar(s.data[s.pos]) + " in literal " + word + " (expecting " + quoteChar(word[i]) + ")")
		}
		s.pos++
	}
	return nil
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at pos.
func (s *scanner) number() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(s.data) {
		return s.eof()
	}
	switch c := s.data[s.pos]; {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail("invalid character " + quoteChar(c) + " in numeric literal")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if err := s.someDigits("after decimal point in numeric literal"); err != nil {
			return err
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if err := s.someDigits("in exponent of numeric literal"); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) someDigits(where string) error {
	if s.pos >= len(s.data) {
		return s.eof()
	}
	if c := s.data[s.pos]; c < '0' || c > '9' {
		return s.fail("invalid character " + quoteChar(c) + " " + where)
	}
	s.digits()
	return nil
}

func (s *scanner) digits() {
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
}

// quoteChar formats c as encoding/json's syntax errors do.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := fmt.Sprintf("%q", rune(c))
	return "'" + s[1:len(s)-1] + "'"
}
