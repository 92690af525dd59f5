package secretbox

import (
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := b.Seal("token-123")
	s2, _ := b.Seal("token-123")
	if s1 == s2 || strings.Contains(s1, "token") {
		t.Fatalf("sealing must be randomised and hide the plaintext: %q %q", s1, s2)
	}
	if got, err := b.Open(s1); err != nil || got != "token-123" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if got, _ := b.Seal(""); got != "" {
		t.Fatalf("empty must stay empty, got %q", got)
	}
	other, _ := New(make([]byte, KeySize))
	if _, err := other.Open(s1); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := b.Open(s1[:len(s1)-2] + "AA"); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("altered: %v", err)
	}
	if _, err := ParseKey("short"); err == nil {
		t.Fatal("short key accepted")
	}
}
