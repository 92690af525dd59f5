package logctx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestHandlerAddsContextAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	ctx := With(context.Background(), slog.String(RequestIDKey, "abc"))
	ctx = With(ctx, slog.String("task_id", "t1"))
	log.InfoContext(ctx, "hello", "n", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["request_id"] != "abc" || rec["task_id"] != "t1" || rec["component"] != "test" || rec["n"] != 1.0 {
		t.Fatalf("record %v", rec)
	}
	if RequestID(ctx) != "abc" || RequestID(context.Background()) != "" {
		t.Fatal("RequestID")
	}
	buf.Reset()
	log.Info("no context")
	if bytes.Contains(buf.Bytes(), []byte("request_id")) {
		t.Fatalf("attrs leaked into a log call without the context: %s", buf.Bytes())
	}
	for id, ok := range map[string]bool{"abc-123": true, "": false, "a b": false, "x\nlevel=ERROR": false, string(make([]byte, 65)): false} {
		if ValidRequestID(id) != ok {
			t.Errorf("ValidRequestID(%q) = %v", id, !ok)
		}
	}
}
