package zendesk

import (
	"encoding/json"
	"testing"
)

// TestJSONStringMatchesEncodingJSON: the fast path gives what encoding/json gives, for plain
// strings, escapes, non-ASCII, invalid UTF-8 and surrounding blanks.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, raw := range []string{`""`, `"abc"`, ` "padded" `, `"tab\tescaped"`, `"quote \" inside"`, `"back\\slash"`,
		`"\u00e9t\u00e9"`, `"été"`, "\"\xff\xfe invalid\"", `"日本語"`, `"\ud83d\ude00"`, `"ZEN:event-type:ticket.created"`} {
		var want string
		wantErr := json.Unmarshal([]byte(raw), &want)
		got, err := jsonString([]byte(raw))
		if (err != nil) != (wantErr != nil) || got != want {
			t.Errorf("jsonString(%q) = %q, %v; encoding/json gives %q, %v", raw, got, err, want, wantErr)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\n"`, "\"\xff\"", `"é"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // ParseEvent validates the document first
		}
		var want string
		if json.Unmarshal(raw, &want) != nil {
			return // not a string
		}
		got, err := jsonString(raw)
		if err != nil || got != want {
			t.Fatalf("jsonString(%q) = %q, %v; want %q", raw, got, err, want)
		}
	})
}
