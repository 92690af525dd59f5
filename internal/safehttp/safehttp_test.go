package safehttp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	cases := []struct {
		url        string
		allowLocal bool
		ok         bool
	}{
		{"https://acme.zendesk.com", false, true},
		{"https://acme.zendesk.com/", false, true},
		{"http://acme.zendesk.com", false, false},
		{"http://acme.zendesk.com", true, true},
		{"https://127.0.0.1", false, false},
		{"https://localhost:8443", false, false},
		{"https://10.1.2.3", false, false},
		{"https://192.168.0.1", false, false},
		{"https://169.254.169.254", false, false},
		{"https://[::1]", false, false},
		{"https://[fd00::1]", false, false},
		{"https://127.0.0.1", true, true},
		{"https://user:pw@acme.zendesk.com", false, false},
		{"https://acme.zendesk.com?x=1", false, false},
		{"acme.zendesk.com", false, false},
		{"ftp://acme.zendesk.com", true, false},
	}
	for _, c := range cases {
		_, err := CheckURL(c.url, c.allowLocal)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", c.url, c.allowLocal, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("error %v does not wrap ErrForbiddenTarget", err)
		}
	}
}

// TestConnectTimeCheck proves the check runs on the dialled address, whatever the URL said.
func TestConnectTimeCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, err := NewClient(false, 5*time.Second).Get(srv.URL)
	if err == nil || !errors.Is(err, ErrForbiddenTarget) {
		t.Fatalf("loopback connection allowed: %v", err)
	}
	resp, err := NewClient(true, 5*time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowLocal refused: %v", err)
	}
	resp.Body.Close()
}

func TestCheckBaseURL(t *testing.T) {
	for url, ok := range map[string]bool{"https://acme.zendesk.com": true, "https://acme.zendesk.com/": true,
		"https://acme.zendesk.com/agent/dashboard": false, "http://acme.zendesk.com": false} {
		if _, err := CheckBaseURL(url, false); (err == nil) != ok {
			t.Errorf("CheckBaseURL(%q) = %v, want ok=%v", url, err, ok)
		}
	}
	if _, err := CheckURL("https://proxy.example.com/clvd", false); err != nil {
		t.Errorf("a public URL with a path (clvd behind a proxy) refused: %v", err)
	}
}
