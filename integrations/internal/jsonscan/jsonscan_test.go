package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// validCases are checked against json.Valid, so the expectation is encoding/json's, not ours.
var validCases = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `-1.5e10`, `.5`, `+1`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `NULL`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`,
	`[1,2]`, `[1,]`, `[,]`, `[1 2]`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"\/"`, "\"a\tb\"", "\"\x7f\"", "\"\xff\"", `"abc`, `"\`,
	`{"a":[{"b":[true,false,null]}]}`, ` {"a" : 1 } `, `{"a":1}x`, `{"a":1}}`, `[1]]`, `{"a":{}}`, "\t[\r\n]\n",
	`{"\u0069d":1}`, `{"a":"b","a":"c"}`, `[[[[[[]]]]]]`, `{"a":1,"b":{"c":[1,{"d":"e"}]}}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.60q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

func TestObject(t *testing.T) {
	fs, err := Object([]byte(` {"id": 12 , "name":"Ada", "n\u0061me":"Bob", "tags":["a", "b"], "x":{"y":null}} `), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 5 {
		t.Fatalf("got %d fields, want 5 (duplicates kept)", len(fs))
	}
	for _, c := range []struct{ key, want string }{{"id", "12"}, {"name", `"Bob"`}, {"tags", `["a", "b"]`}, {"x", `{"y":null}`}} {
		if v, ok := fs.Get(c.key); !ok || string(v) != c.want {
			t.Errorf("Get(%q) = %q, %v; want %q", c.key, v, ok, c.want)
		}
	}
	if _, ok := fs.Get("ID"); ok {
		t.Error(`Get("ID") found "id": map keys are exact`)
	}
	if v, ok := fs.Fold("ID"); !ok || string(v) != "12" {
		t.Errorf(`Fold("ID") = %q, %v; want "12"`, v, ok)
	}

	for _, c := range []struct {
		body string
		kind Kind // of a KindError, or Invalid for a SyntaxError
	}{{`[1]`, ArrayKind}, {`"s"`, String}, {`null`, Null}, {`{"a":}`, Invalid}, {`{"a":1} 2`, Invalid}, {``, Invalid}, {`{"a":1`, Invalid}} {
		_, err := Object([]byte(c.body), nil)
		var ke *KindError
		var se *SyntaxError
		switch {
		case c.kind != Invalid && (!errors.As(err, &ke) || ke.Got != c.kind):
			t.Errorf("Object(%q): %v, want a KindError with %s", c.body, err, c.kind)
		case c.kind == Invalid && !errors.As(err, &se):
			t.Errorf("Object(%q): %v, want a SyntaxError", c.body, err)
		}
	}
}

func TestArray(t *testing.T) {
	items, err := Array([]byte(`[ 1, "two" ,{"3":[4]} ,null]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`1`, `"two"`, `{"3":[4]}`, `null`}
	if len(items) != len(want) {
		t.Fatalf("items %q, want %q", items, want)
	}
	for i := range want {
		if string(items[i]) != want[i] {
			t.Errorf("item %d = %q, want %q", i, items[i], want[i])
		}
	}
	var ke *KindError
	if _, err := Array([]byte(`{}`), nil); !errors.As(err, &ke) || ke.Got != ObjectKind {
		t.Errorf("Array({}) = %v, want a KindError", err)
	}
	if _, err := Array([]byte(`[1,]`), nil); err == nil {
		t.Error("Array([1,]) accepted a trailing comma")
	}
}

func TestStringValue(t *testing.T) {
	for _, c := range []string{`"plain"`, `""`, `"caf\u00e9"`, `"café"`, `"a\"b"`, `"tab\there"`, "\"\xff\xfe invalid\"", `"\ud83d\ude00"`,
		`"\ud83d"`, ` "x" `, `"back\\slash"`, `"日本語"`, `"ZEN:event-type:ticket.created"`} {
		var want string
		if err := json.Unmarshal([]byte(c), &want); err != nil {
			t.Fatalf("bad case %q: %v", c, err)
		}
		got, err := StringValue([]byte(c))
		if err != nil || got != want {
			t.Errorf("StringValue(%q) = %q, %v; want %q", c, got, err, want)
		}
	}
}

func TestKindOf(t *testing.T) {
	for raw, want := range map[string]Kind{`{}`: ObjectKind, ` [1]`: ArrayKind, `"s"`: String, `-1`: Number, `7`: Number,
		`true`: Bool, `false`: Bool, `null`: Null, ``: Invalid, `  `: Invalid, `x`: Invalid} {
		if got := KindOf([]byte(raw)); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", raw, got, want)
		}
	}
}

// FuzzScan checks the scanner against encoding/json on any input: the same validity, the same fields
// (each key's last value, byte for byte, as json.RawMessage keeps it), the same array items, and the
// same decoded strings.
func FuzzScan(f *testing.F) {
	for _, c := range validCases[:len(validCases)-3] {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"type":"zen:event-type:ticket.created","id":"01H","detail":{"id":"35","tags":["vip","b\u00e9"]},"event":{}}`))
	f.Add([]byte(`{"id":820982911946154508,"total_price":"199.00","customer":null,"refunds":[{"id":1,"transactions":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		if Valid(data) != valid {
			t.Fatalf("Valid = %v, json.Valid = %v", !valid, valid)
		}
		// encoding/json decodes null into a map or slice as nil, without error; Object and Array
		// say it is not an object or array, and callers treat null as they choose.
		isNull := valid && KindOf(data) == Null
		fs, err := Object(data, nil)
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(data, &m)
		if (err == nil) != (jerr == nil) && !isNull {
			t.Fatalf("Object error %v, encoding/json error %v", err, jerr)
		}
		if err == nil {
			if len(m) > len(fs) {
				t.Fatalf("%d fields, encoding/json has %d keys", len(fs), len(m))
			}
			for k, v := range m {
				got, ok := fs.Get(k)
				if !ok || !bytes.Equal(got, v) {
					t.Fatalf("field %q = %q, %v; encoding/json has %q", k, got, ok, v)
				}
			}
			for _, f := range fs {
				if _, ok := m[string(f.Key)]; !ok {
					t.Fatalf("field %q is not among encoding/json's keys", f.Key)
				}
				if KindOf(f.Value) == String {
					var want string
					if json.Unmarshal(f.Value, &want) == nil {
						if got, err := StringValue(f.Value); err != nil || got != want {
							t.Fatalf("StringValue(%q) = %q, %v; encoding/json gives %q", f.Value, got, err, want)
						}
					}
				}
			}
		}
		items, err := Array(data, nil)
		var raws []json.RawMessage
		jerr = json.Unmarshal(data, &raws)
		if (err == nil) != (jerr == nil) && !isNull {
			t.Fatalf("Array error %v, encoding/json error %v", err, jerr)
		}
		if err == nil {
			if len(items) != len(raws) {
				t.Fatalf("%d items, encoding/json has %d", len(items), len(raws))
			}
			for i := range raws {
				if !bytes.Equal(items[i], raws[i]) {
					t.Fatalf("item %d = %q, encoding/json has %q", i, items[i], raws[i])
				}
			}
		}
	})
}

// FuzzStringValue checks StringValue's fast path against encoding/json on any JSON string.
func FuzzStringValue(f *testing.F) {
	for _, s := range []string{`"a"`, `"\n"`, "\"\xff\"", `"é"`, `"\u00e9"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // callers only pass values cut from a validated document
		}
		var want string
		if json.Unmarshal(raw, &want) != nil {
			return // not a string
		}
		got, err := StringValue(raw)
		if err != nil || got != want {
			t.Fatalf("StringValue(%q) = %q, %v; want %q", raw, got, err, want)
		}
	})
}
