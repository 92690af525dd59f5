package zendesk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
)

const (
	testEmail = "clvd-bot@acme.example"
	testToken = "t0k3n-SECRET-6f1c9a"
)

func newTestClient(t *testing.T) (*Client, *zendesktest.Server) {
	t.Helper()
	fake := zendesktest.New(t, testEmail, testToken)
	c, err := NewClient(fake.URL, testEmail, testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

// onlyRequest returns the single request the fake saw, failing unless there was exactly one.
func onlyRequest(t *testing.T, fake *zendesktest.Server) zendesktest.RecordedRequest {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestNewClientValidation(t *testing.T) {
	for _, base := range []string{
		"", "acme.zendesk.com", "ftp://acme.zendesk.com", "https://", "https://acme.zendesk.com/api/v2",
		"https://acme.zendesk.com/?x=1", "https://bot:hunter2@acme.zendesk.com", "://bad",
		"http://acme.zendesk.com", // the token would travel in clear text
	} {
		_, err := NewClient(base, testEmail, testToken, nil)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("NewClient(%q): %v, want ErrInvalidInput", base, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewClient(%q) error leaks the URL password: %v", base, err)
		}
	}
	for _, base := range []string{"https://acme.zendesk.com", "https://acme.zendesk.com/", "http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80"} {
		if _, err := NewClient(base, testEmail, testToken, nil); err != nil {
			t.Errorf("NewClient(%q): %v", base, err)
		}
	}
	if _, err := NewClient("https://acme.zendesk.com", " ", testToken, nil); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty email: %v", err)
	}
	if _, err := NewClient("https://acme.zendesk.com", testEmail, "", nil); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty token: %v", err)
	}
	c, _ := NewClient("https://acme.zendesk.com", testEmail, testToken, nil)
	if c.http.Timeout != 30*time.Second {
		t.Errorf("default timeout %s", c.http.Timeout)
	}
}

func TestGetUser(t *testing.T) {
	c, fake := newTestClient(t)
	fake.AddUser("9120077781", " Ana.Silva@Example.COM", "Ana Silva")
	u, err := c.GetUser(context.Background(), "9120077781")
	if err != nil {
		t.Fatal(err)
	}
	want := User{ID: "9120077781", Email: "ana.silva@example.com", Name: "Ana Silva"}
	if u != want {
		t.Errorf("GetUser = %+v, want %+v", u, want)
	}
	req := onlyRequest(t, fake)
	if req.Method != http.MethodGet || req.Path != "/api/v2/users/9120077781.json" || len(req.Body) != 0 {
		t.Errorf("request %s %s body %q", req.Method, req.Path, req.Body)
	}

	if _, err := c.GetUser(context.Background(), "404404"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
}

func TestUpdateTicketTags(t *testing.T) {
	c, fake := newTestClient(t)
	fake.AddTicket("48213", "open", "shipping", "clv_tier_silver")
	err := c.UpdateTicketTags(context.Background(), "48213", []string{"clv_tier_gold", "clv_churn_high"}, []string{"clv_tier_silver"})
	if err != nil {
		t.Fatal(err)
	}
	req := onlyRequest(t, fake)
	if req.Method != http.MethodPut || req.Path != "/api/v2/tickets/48213.json" || req.ContentType != "application/json" {
		t.Errorf("request %s %s %q", req.Method, req.Path, req.ContentType)
	}
	assertJSON(t, req.Body, `{"ticket":{"additional_tags":["clv_tier_gold","clv_churn_high"],"remove_tags":["clv_tier_silver"]}}`)
	if got, want := fake.TicketTags("48213"), []string{"clv_churn_high", "clv_tier_gold", "shipping"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ticket tags %v, want %v", got, want)
	}

	// Only one list: the other is left out of the body rather than sent empty.
	fake.ResetRequests()
	if err := c.UpdateTicketTags(context.Background(), "48213", nil, []string{"clv_churn_high"}); err != nil {
		t.Fatal(err)
	}
	assertJSON(t, onlyRequest(t, fake).Body, `{"ticket":{"remove_tags":["clv_churn_high"]}}`)

	// Nothing to do: no call.
	fake.ResetRequests()
	if err := c.UpdateTicketTags(context.Background(), "48213", nil, []string{}); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("empty update sent %d requests", n)
	}

	// Ids go into the path: anything but digits is refused before sending.
	for _, bad := range []string{"", "0", "48213/../users/1", "12a", "-5"} {
		if err := c.UpdateTicketTags(context.Background(), bad, []string{"x"}, nil); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ticket id %q: %v, want ErrInvalidInput", bad, err)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("invalid ids sent %d requests", n)
	}
}

func TestUpdateTicketTagsClosedTicket(t *testing.T) {
	c, fake := newTestClient(t)
	fake.AddTicket("7", "closed", "old")
	err := c.UpdateTicketTags(context.Background(), "7", []string{"clv_tier_gold"}, nil)
	if !errors.Is(err, ErrClosedTicket) {
		t.Fatalf("closed ticket: %v, want ErrClosedTicket", err)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		t.Errorf("closed ticket also reported as APIError %v", apiErr)
	}
	if got := fake.TicketTags("7"); !reflect.DeepEqual(got, []string{"old"}) {
		t.Errorf("closed ticket's tags changed to %v", got)
	}
}

func TestIsClosedTicket(t *testing.T) {
	for body, want := range map[string]bool{
		`{"error":"RecordInvalid","description":"Record validation errors","details":{"status":[{"description":"Status: closed prevents ticket update"}]}}`: true,
		`{"details":{"base":[{"description":"Status: Closed prevents ticket update"}]}}`:                                                                    true,
		`{"error":"RecordInvalid","details":{"status":[{"error":"ClosedTicket","description":"Ticket is closed"}]}}`:                                        true,
		`{"error":"RecordInvalid","description":"Record validation errors","details":{"requester":[{"description":"Requester: is invalid"}]}}`:              false,
		`not json`: false,
	} {
		if got := isClosedTicket([]byte(body)); got != want {
			t.Errorf("isClosedTicket(%s) = %v", body, got)
		}
	}
	// A 422 that is not about a closed ticket stays an APIError.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"error":"RecordInvalid","details":{"requester":[{"description":"Requester: is invalid"}]}}`))
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, testEmail, testToken, nil)
	err := c.UpdateTicketTags(context.Background(), "1", []string{"a"}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 422 || apiErr.Temporary() || errors.Is(err, ErrClosedTicket) {
		t.Errorf("other 422: %v", err)
	}
}

func TestUpdateManyTicketTags(t *testing.T) {
	c, fake := newTestClient(t)
	fake.AddTicket("1", "open")
	fake.AddTicket("2", "solved", "clv_tier_silver")
	fake.AddTicket("3", "closed")
	jobID, err := c.UpdateManyTicketTags(context.Background(), []string{"1", "2", "3"}, []string{"clv_tier_gold"}, []string{"clv_tier_silver"})
	if err != nil {
		t.Fatal(err)
	}
	if jobID == "" {
		t.Error("empty job id")
	}
	req := onlyRequest(t, fake)
	if req.Method != http.MethodPut || req.Path != "/api/v2/tickets/update_many.json" || req.RawQuery != "ids=1,2,3" {
		t.Errorf("request %s %s?%s", req.Method, req.Path, req.RawQuery)
	}
	assertJSON(t, req.Body, `{"ticket":{"additional_tags":["clv_tier_gold"],"remove_tags":["clv_tier_silver"]}}`)
	for id, want := range map[string][]string{"1": {"clv_tier_gold"}, "2": {"clv_tier_gold"}, "3": {}} {
		if got := fake.TicketTags(id); !reflect.DeepEqual(got, want) {
			t.Errorf("ticket %s tags %v, want %v", id, got, want)
		}
	}

	tooMany := make([]string, MaxBulkTickets+1)
	for i := range tooMany {
		tooMany[i] = "1"
	}
	for name, ids := range map[string][]string{"none": nil, "101": tooMany, "bad id": {"1", "x"}} {
		if _, err := c.UpdateManyTicketTags(context.Background(), ids, []string{"a"}, nil); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestUpdateUserTags(t *testing.T) {
	c, fake := newTestClient(t)
	fake.AddUser("31", "bo@example.org", "Bo")
	if err := c.UpdateUserTags(context.Background(), "31", []string{"clv_tier_silver"}, nil); err != nil {
		t.Fatal(err)
	}
	fake.ResetRequests()
	if err := c.UpdateUserTags(context.Background(), "31", []string{"clv_tier_gold"}, []string{"clv_tier_silver"}); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if reqs[0].Method != http.MethodPut || reqs[0].Path != "/api/v2/users/31/tags.json" {
		t.Errorf("first request %s %s", reqs[0].Method, reqs[0].Path)
	}
	assertJSON(t, reqs[0].Body, `{"tags":["clv_tier_gold"]}`)
	if reqs[1].Method != http.MethodDelete || reqs[1].Path != "/api/v2/users/31/tags.json" || reqs[1].ContentType != "application/json" {
		t.Errorf("second request %s %s %q", reqs[1].Method, reqs[1].Path, reqs[1].ContentType)
	}
	assertJSON(t, reqs[1].Body, `{"tags":["clv_tier_silver"]}`)
	if got := fake.UserTags("31"); !reflect.DeepEqual(got, []string{"clv_tier_gold"}) {
		t.Errorf("user tags %v", got)
	}

	// Remove only: a single DELETE.
	fake.ResetRequests()
	if err := c.UpdateUserTags(context.Background(), "31", nil, []string{"clv_tier_gold"}); err != nil {
		t.Fatal(err)
	}
	if req := onlyRequest(t, fake); req.Method != http.MethodDelete {
		t.Errorf("remove-only sent %s", req.Method)
	}
	if got := fake.UserTags("31"); len(got) != 0 {
		t.Errorf("user tags %v, want none", got)
	}

	// Nothing to do: no call. Unknown user: ErrNotFound.
	fake.ResetRequests()
	if err := c.UpdateUserTags(context.Background(), "31", nil, nil); err != nil || len(fake.Requests()) != 0 {
		t.Errorf("empty update: %v, %d requests", err, len(fake.Requests()))
	}
	if err := c.UpdateUserTags(context.Background(), "999", []string{"a"}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func TestSetUserFields(t *testing.T) {
	c, fake := newTestClient(t)
	fake.AddUser("31", "bo@example.org", "Bo")
	fields := map[string]any{"clv_value": 1234.5, "clv_tier": "gold", "clv_at_risk": true}
	if err := c.SetUserFields(context.Background(), "31", fields); err != nil {
		t.Fatal(err)
	}
	req := onlyRequest(t, fake)
	if req.Method != http.MethodPut || req.Path != "/api/v2/users/31.json" {
		t.Errorf("request %s %s", req.Method, req.Path)
	}
	assertJSON(t, req.Body, `{"user":{"user_fields":{"clv_value":1234.5,"clv_tier":"gold","clv_at_risk":true}}}`)
	if got := fake.UserFields("31"); !reflect.DeepEqual(got, fields) {
		t.Errorf("user fields %v", got)
	}

	fake.ResetRequests()
	if err := c.SetUserFields(context.Background(), "31", nil); err != nil || len(fake.Requests()) != 0 {
		t.Errorf("empty fields: %v, %d requests", err, len(fake.Requests()))
	}
	if err := c.SetUserFields(context.Background(), "31", map[string]any{"bad": make(chan int)}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("unencodable field: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("429 with Retry-After seconds", func(t *testing.T) {
		c, fake := newTestClient(t)
		fake.AddTicket("1", "open")
		fake.FailNextWith(1, zendesktest.Fault{Status: 429, Header: http.Header{"Retry-After": {"93"}}})
		err := c.UpdateTicketTags(ctx, "1", []string{"a"}, nil)
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != 93*time.Second || !rl.Temporary() {
			t.Fatalf("got %v, want RateLimitError 93s", err)
		}
		if len(fake.TicketTags("1")) != 0 {
			t.Error("rate-limited request changed the ticket")
		}
		// The fault was one-shot: the retry goes through.
		if err := c.UpdateTicketTags(ctx, "1", []string{"a"}, nil); err != nil {
			t.Errorf("retry: %v", err)
		}
	})
	t.Run("429 with Retry-After HTTP date", func(t *testing.T) {
		c, fake := newTestClient(t)
		now := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
		c.now = func() time.Time { return now }
		fake.AddUser("5", "a@b.c", "A")
		fake.FailNextWith(1, zendesktest.Fault{Status: 429, Header: http.Header{"Retry-After": {now.Add(2 * time.Minute).Format(http.TimeFormat)}}})
		_, err := c.GetUser(ctx, "5")
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Minute {
			t.Fatalf("got %v, want RateLimitError 2m", err)
		}
	})
	t.Run("429 without Retry-After", func(t *testing.T) {
		c, fake := newTestClient(t)
		fake.FailNextWith(1, zendesktest.Fault{Status: 429})
		_, err := c.GetUser(ctx, "5")
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != DefaultRetryAfter {
			t.Fatalf("got %v, want RateLimitError %s", err, DefaultRetryAfter)
		}
	})
	t.Run("500 is a temporary APIError", func(t *testing.T) {
		c, fake := newTestClient(t)
		fake.FailNextWith(1, zendesktest.Fault{Status: 500, Body: `{"error":"oops","echo":"` + testToken + `"}`})
		_, err := c.GetUser(ctx, "5")
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 500 || !apiErr.Temporary() {
			t.Fatalf("got %v, want temporary APIError 500", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("error leaks the token: %v", err)
		}
		if !strings.Contains(apiErr.Body, "[redacted]") {
			t.Errorf("body %q", apiErr.Body)
		}
	})
	t.Run("409 is temporary, 400 is not", func(t *testing.T) {
		c, fake := newTestClient(t)
		fake.FailNext(1, 409)
		fake.FailNext(1, 400)
		var apiErr *APIError
		if _, err := c.GetUser(ctx, "5"); !errors.As(err, &apiErr) || !apiErr.Temporary() {
			t.Errorf("409: %v", err)
		}
		if _, err := c.GetUser(ctx, "5"); !errors.As(err, &apiErr) || apiErr.Temporary() {
			t.Errorf("400: %v", err)
		}
	})
	t.Run("wrong token is ErrUnauthorized", func(t *testing.T) {
		fake := zendesktest.New(t, testEmail, testToken)
		fake.AddUser("5", "a@b.c", "A")
		c, _ := NewClient(fake.URL, testEmail, "wrong-token", nil)
		_, err := c.GetUser(ctx, "5")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), "wrong-token") {
			t.Errorf("error leaks the token: %v", err)
		}
	})
	t.Run("403 is ErrUnauthorized", func(t *testing.T) {
		c, fake := newTestClient(t)
		fake.FailNext(1, 403)
		if _, err := c.GetUser(ctx, "5"); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		c, fake := newTestClient(t)
		fake.AddUser("5", "a@b.c", "A")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.GetUser(cctx, "5"); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("deadline while the server stalls", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		c, _ := NewClient(srv.URL, testEmail, testToken, nil)
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := c.GetUser(dctx, "5"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want DeadlineExceeded", err)
		}
	})
	t.Run("network error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, _ := NewClient(url, testEmail, testToken, nil)
		_, err := c.GetUser(ctx, "5")
		var apiErr *APIError
		if err == nil || errors.As(err, &apiErr) || errors.Is(err, ErrInvalidInput) {
			t.Errorf("got %v, want a plain network error", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("network error leaks the token: %v", err)
		}
	})
}

func TestClientSendsTokenAuth(t *testing.T) {
	var gotUser, gotPass, gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		gotAccept = r.Header.Get("Accept")
		_, _ = w.Write([]byte(`{"user":{"id":5,"email":"a@b.c","name":"A"}}`))
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL+"/", testEmail, testToken, nil)
	if _, err := c.GetUser(context.Background(), "5"); err != nil {
		t.Fatal(err)
	}
	if gotUser != testEmail+"/token" || gotPass != testToken || gotAccept != "application/json" {
		t.Errorf("auth %q:%q accept %q", gotUser, gotPass, gotAccept)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	for header, want := range map[string]time.Duration{
		"":                              DefaultRetryAfter,
		"0":                             0,
		" 7 ":                           7 * time.Second,
		"-3":                            DefaultRetryAfter,
		"soon":                          DefaultRetryAfter,
		"99999999999":                   24 * time.Hour,
		"Tue, 04 Mar 2025 09:00:30 GMT": 30 * time.Second,
		"Tue, 04 Mar 2025 08:59:00 GMT": 0,
	} {
		if got := retryAfter(header, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", header, got, want)
		}
	}
}

func TestErrorBodyTruncated(t *testing.T) {
	c, fake := newTestClient(t)
	fake.FailNextWith(1, zendesktest.Fault{Status: 502, Body: strings.Repeat("é", 2000)})
	_, err := c.GetUser(context.Background(), "5")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v", err)
	}
	if len(apiErr.Body) > maxErrorBody+len("…") || !strings.HasSuffix(apiErr.Body, "…") || !strings.HasPrefix(apiErr.Body, "éé") {
		t.Errorf("body not truncated cleanly: %d bytes", len(apiErr.Body))
	}
}

func TestRedirectsAreNotFollowedIntoAGet(t *testing.T) {
	// A PUT answered with a redirect must not end as a GET that returns 200.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ticket":{"id":1}}`))
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	defer redirector.Close()

	c, _ := NewClient(redirector.URL, testEmail, testToken, nil)
	err := c.UpdateTicketTags(context.Background(), "1", []string{"a"}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusMovedPermanently || apiErr.Temporary() {
		t.Errorf("default client: %v, want a permanent APIError 301", err)
	}

	following, _ := NewClient(redirector.URL, testEmail, testToken, &http.Client{})
	err = following.UpdateTicketTags(context.Background(), "1", []string{"a"}, nil)
	if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "redirected") {
		t.Errorf("redirect-following client: %v, want ErrInvalidInput about the redirect", err)
	}
}
