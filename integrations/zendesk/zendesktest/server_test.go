package zendesktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	email = "agent@acme.example"
	token = "fake-token-123"
)

// call sends one request to the fake with valid credentials unless auth is false.
func call(t *testing.T, s *Server, method, path, contentType, body string, auth bool) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(email+"/token", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func TestAuth(t *testing.T) {
	s := New(t, email, token)
	s.AddUser("1", "a@b.c", "A")
	for name, set := range map[string]func(*http.Request){
		"no auth":           func(*http.Request) {},
		"wrong token":       func(r *http.Request) { r.SetBasicAuth(email+"/token", "nope") },
		"password style":    func(r *http.Request) { r.SetBasicAuth(email, token) },
		"other agent":       func(r *http.Request) { r.SetBasicAuth("x@acme.example/token", token) },
		"bearer, not basic": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
	} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v2/users/1.json", nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
	}
	if code, _, body := call(t, s, http.MethodGet, "/api/v2/users/1.json", "", "", true); code != 200 || !strings.Contains(body, `"email":"a@b.c"`) {
		t.Errorf("valid auth: %d %s", code, body)
	}
}

func TestBodyChecks(t *testing.T) {
	s := New(t, email, token)
	s.AddTicket("5", "open")
	s.AddUser("6", "a@b.c", "A")
	const ctJSON = "application/json"
	tests := []struct {
		name, method, path, contentType, body string
		want                                  int
	}{
		{"ticket: not JSON", "PUT", "/api/v2/tickets/5.json", ctJSON, `{"ticket":`, 400},
		{"ticket: unknown top-level key", "PUT", "/api/v2/tickets/5.json", ctJSON, `{"tickets":{"additional_tags":["a"]}}`, 400},
		{"ticket: extra top-level key", "PUT", "/api/v2/tickets/5.json", ctJSON, `{"ticket":{},"x":1}`, 400},
		{"ticket: unknown ticket key", "PUT", "/api/v2/tickets/5.json", ctJSON, `{"ticket":{"tags":["a"]}}`, 400},
		{"ticket: tags not an array", "PUT", "/api/v2/tickets/5.json", ctJSON, `{"ticket":{"additional_tags":"a"}}`, 400},
		{"ticket: two JSON values", "PUT", "/api/v2/tickets/5.json", ctJSON, `{"ticket":{}} {}`, 400},
		{"ticket: no content type", "PUT", "/api/v2/tickets/5.json", "", `{"ticket":{}}`, 415},
		{"ticket: form content type", "PUT", "/api/v2/tickets/5.json", "application/x-www-form-urlencoded", `{"ticket":{}}`, 415},
		{"ticket: charset parameter is fine", "PUT", "/api/v2/tickets/5.json", "application/json; charset=utf-8", `{"ticket":{"additional_tags":["a"]}}`, 200},
		{"ticket: unknown", "PUT", "/api/v2/tickets/77.json", ctJSON, `{"ticket":{"additional_tags":["a"]}}`, 404},
		{"ticket: not an id", "PUT", "/api/v2/tickets/abc.json", ctJSON, `{"ticket":{}}`, 404},
		{"ticket: DELETE not served", "DELETE", "/api/v2/tickets/5.json", "", "", 405},
		{"user tags: empty list", "PUT", "/api/v2/users/6/tags.json", ctJSON, `{"tags":[]}`, 400},
		{"user tags: wrong key", "PUT", "/api/v2/users/6/tags.json", ctJSON, `{"tag":["a"]}`, 400},
		{"user tags: DELETE without body", "DELETE", "/api/v2/users/6/tags.json", "", "", 400},
		{"user tags: unknown user", "PUT", "/api/v2/users/60/tags.json", ctJSON, `{"tags":["a"]}`, 404},
		{"user: fields missing", "PUT", "/api/v2/users/6.json", ctJSON, `{"user":{"name":"B"}}`, 400},
		{"user: not wrapped", "PUT", "/api/v2/users/6.json", ctJSON, `{"user_fields":{"a":1}}`, 400},
		{"update_many: no ids", "PUT", "/api/v2/tickets/update_many.json", ctJSON, `{"ticket":{}}`, 400},
		{"update_many: bad id", "PUT", "/api/v2/tickets/update_many.json?ids=1,x", ctJSON, `{"ticket":{}}`, 400},
		{"update_many: batch shape", "PUT", "/api/v2/tickets/update_many.json?ids=5", ctJSON, `{"tickets":[{"id":5}]}`, 400},
		{"unknown endpoint", "GET", "/api/v2/organizations/1.json", "", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := call(t, s, tc.method, tc.path, tc.contentType, tc.body, true)
			if code != tc.want {
				t.Errorf("status %d, want %d (%s)", code, tc.want, body)
			}
		})
	}
	if got := s.TicketTags("5"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("only the valid request should have changed ticket 5: tags %v", got)
	}
	if got := s.UserTags("6"); len(got) != 0 {
		t.Errorf("refused requests changed user tags: %v", got)
	}
	tooMany := strings.TrimSuffix(strings.Repeat("5,", MaxBulkTickets+1), ",")
	if code, _, _ := call(t, s, "PUT", "/api/v2/tickets/update_many.json?ids="+tooMany, ctJSON, `{"ticket":{}}`, true); code != 400 {
		t.Errorf("101 ids: status %d", code)
	}
}

func TestTicketBehaviour(t *testing.T) {
	s := New(t, email, token)
	s.AddTicket("5", "open", "Existing Tag")
	s.AddTicket("6", "closed", "kept")

	code, _, body := call(t, s, "PUT", "/api/v2/tickets/5.json", "application/json",
		`{"ticket":{"additional_tags":["clv_tier_gold","Two Words"],"remove_tags":["existing tag"]}}`, true)
	if code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	// Tags are stored the way Zendesk stores them: lower case, spaces as underscores.
	if got, want := s.TicketTags("5"), []string{"clv_tier_gold", "two_words"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	code, _, body = call(t, s, "GET", "/api/v2/tickets/5.json", "", "", true)
	if code != 200 || !strings.Contains(body, `"tags":["clv_tier_gold","two_words"]`) || !strings.Contains(body, `"id":5`) {
		t.Errorf("show: %d %s", code, body)
	}

	code, _, body = call(t, s, "PUT", "/api/v2/tickets/6.json", "application/json", `{"ticket":{"additional_tags":["x"]}}`, true)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Status: closed prevents ticket update") || !strings.Contains(body, `"error":"RecordInvalid"`) {
		t.Errorf("closed: %d %s", code, body)
	}
	if got := s.TicketTags("6"); !reflect.DeepEqual(got, []string{"kept"}) {
		t.Errorf("closed ticket changed: %v", got)
	}

	code, _, body = call(t, s, "PUT", "/api/v2/tickets/update_many.json?ids=5,6,404", "application/json", `{"ticket":{"additional_tags":["bulk"]}}`, true)
	if code != 200 {
		t.Fatalf("update_many: %d %s", code, body)
	}
	var resp struct {
		JobStatus struct {
			ID      string `json:"id"`
			URL     string `json:"url"`
			Status  string `json:"status"`
			Results []struct {
				ID      int64 `json:"id"`
				Success bool  `json:"success"`
			} `json:"results"`
		} `json:"job_status"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	js := resp.JobStatus
	if len(js.ID) != 32 || js.Status != "completed" || len(js.Results) != 3 ||
		!js.Results[0].Success || js.Results[1].Success || js.Results[2].Success {
		t.Errorf("job status %+v", js)
	}
	if !contains(s.TicketTags("5"), "bulk") || contains(s.TicketTags("6"), "bulk") {
		t.Error("update_many applied to the wrong tickets")
	}
	path := strings.TrimPrefix(js.URL, s.URL)
	if code, _, body := call(t, s, "GET", path, "", "", true); code != 200 || !strings.Contains(body, js.ID) {
		t.Errorf("job status URL %s: %d %s", js.URL, code, body)
	}
}

func TestUserBehaviour(t *testing.T) {
	s := New(t, email, token)
	s.AddUser("9", "ana@example.com", "Ana")
	if code, _, body := call(t, s, "PUT", "/api/v2/users/9/tags.json", "application/json", `{"tags":["clv_tier_gold","vip"]}`, true); code != 200 || body != `{"tags":["clv_tier_gold","vip"]}` {
		t.Errorf("add tags: %d %s", code, body)
	}
	if code, _, body := call(t, s, "DELETE", "/api/v2/users/9/tags.json", "application/json", `{"tags":["vip","absent"]}`, true); code != 200 || body != `{"tags":["clv_tier_gold"]}` {
		t.Errorf("remove tags: %d %s", code, body)
	}
	if code, _, body := call(t, s, "PUT", "/api/v2/users/9.json", "application/json", `{"user":{"user_fields":{"clv":12.5,"tier":"gold"}}}`, true); code != 200 {
		t.Errorf("set fields: %d %s", code, body)
	}
	if code, _, _ := call(t, s, "PUT", "/api/v2/users/9.json", "application/json", `{"user":{"user_fields":{"tier":null}}}`, true); code != 200 {
		t.Errorf("clear field: %d", code)
	}
	if got, want := s.UserFields("9"), map[string]any{"clv": 12.5, "tier": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	if s.UserFields("nobody") != nil || s.UserTags("nobody") != nil || s.TicketTags("nothing") != nil {
		t.Error("unknown ids should give nil")
	}
}

func TestFaults(t *testing.T) {
	s := New(t, email, token)
	s.AddUser("1", "a@b.c", "A")

	s.SetFaults(0, 0, 3*time.Second)
	s.FailNext(2, http.StatusTooManyRequests)
	for i := range 2 {
		code, header, _ := call(t, s, "GET", "/api/v2/users/1.json", "", "", true)
		if code != 429 || header.Get("Retry-After") != "3" {
			t.Errorf("faulted request %d: %d Retry-After %q", i, code, header.Get("Retry-After"))
		}
	}
	if code, _, _ := call(t, s, "GET", "/api/v2/users/1.json", "", "", true); code != 200 {
		t.Errorf("after the queued faults: %d", code)
	}
	// Queued faults come before auth: a test can fail even a request with bad credentials.
	s.FailNextWith(1, Fault{Status: 503, Body: "down"})
	if code, _, body := call(t, s, "GET", "/api/v2/users/1.json", "", "", false); code != 503 || body != "down" {
		t.Errorf("FailNextWith: %d %q", code, body)
	}

	// Random faults are reproducible for a given seed and roughly at the asked rates.
	run := func(seed uint64) []int {
		s.SetSeed(seed)
		s.SetFaults(0.2, 0.1, time.Second)
		defer s.SetFaults(0, 0, time.Second)
		codes := make([]int, 400)
		for i := range codes {
			codes[i], _, _ = call(t, s, "GET", "/api/v2/users/1.json", "", "", true)
		}
		return codes
	}
	first, second := run(42), run(42)
	if !reflect.DeepEqual(first, second) {
		t.Error("the same seed gave different faults")
	}
	count := map[int]int{}
	for _, c := range first {
		count[c]++
	}
	if count[429] < 50 || count[429] > 110 || count[503] < 20 || count[503] > 65 || count[200] != 400-count[429]-count[503] {
		t.Errorf("fault counts %v for rates 0.2/0.1 over 400 requests", count)
	}
	if reflect.DeepEqual(first, run(43)) {
		t.Error("different seeds gave identical faults")
	}
}

func TestRequestsRecorded(t *testing.T) {
	s := New(t, email, token)
	s.AddTicket("5", "open")
	before := time.Now()
	call(t, s, "PUT", "/api/v2/tickets/update_many.json?ids=5", "application/json", `{"ticket":{"additional_tags":["a"]}}`, true)
	call(t, s, "GET", "/api/v2/users/1.json", "", "", false)
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "PUT" || r.Path != "/api/v2/tickets/update_many.json" || r.RawQuery != "ids=5" ||
		r.ContentType != "application/json" || string(r.Body) != `{"ticket":{"additional_tags":["a"]}}` ||
		r.Status != 200 || r.Time.Before(before) {
		t.Errorf("recorded %+v", r)
	}
	if reqs[1].Status != 401 {
		t.Errorf("refused request recorded with status %d", reqs[1].Status)
	}
	// The returned slice is a copy.
	reqs[0].Body[0] = 'X'
	if s.Requests()[0].Body[0] != '{' {
		t.Error("Requests returned the fake's own buffer")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(t, email, token)
	for i := range 20 {
		s.AddTicket(fmt.Sprint(i+1), "open")
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint(i + 1)
			for j := range 5 {
				// Not call(): t.Fatal must not run outside the test goroutine.
				body := fmt.Sprintf(`{"ticket":{"additional_tags":["t%d"]}}`, j)
				req, _ := http.NewRequest(http.MethodPut, s.URL+"/api/v2/tickets/"+id+".json", strings.NewReader(body))
				req.SetBasicAuth(email+"/token", token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("ticket %s: status %d", id, resp.StatusCode)
				}
				_ = s.TicketTags(id)
				_ = s.Requests()
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		if got := s.TicketTags(fmt.Sprint(i + 1)); len(got) != 5 {
			t.Errorf("ticket %d tags %v", i+1, got)
		}
	}
	if n := len(s.Requests()); n != 100 {
		t.Errorf("%d requests recorded, want 100", n)
	}
}

func TestNewWithoutTB(t *testing.T) {
	s := New(nil, email, token)
	s.AddUser("1", "a@b.c", "A")
	if code, _, _ := call(t, s, "GET", "/api/v2/users/1.json", "", "", true); code != 200 {
		t.Errorf("status %d", code)
	}
	s.Close()
	s.Close()
	if _, err := http.Get(s.URL + "/api/v2/users/1.json"); err == nil {
		t.Error("server still answering after Close")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestOutage(t *testing.T) {
	s := New(t, email, token)
	s.AddUser("1", "a@b.c", "A")
	s.SetFaults(0, 0, 3*time.Second)
	addTag := func(client *http.Client) (int, error) {
		req, _ := http.NewRequest(http.MethodPut, s.URL+"/api/v2/users/1/tags.json", strings.NewReader(`{"tags":["x"]}`))
		req.SetBasicAuth(email+"/token", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("429 without the Retry-After asked for: %q", resp.Header.Get("Retry-After"))
		}
		return resp.StatusCode, nil
	}
	for _, c := range []struct {
		outage Outage
		want   int
	}{{Down429, http.StatusTooManyRequests}, {Down500, http.StatusInternalServerError}} {
		s.SetOutage(c.outage)
		for range 3 {
			if st, err := addTag(http.DefaultClient); err != nil || st != c.want {
				t.Fatalf("outage %s: status %d, %v; want %d", c.outage, st, err, c.want)
			}
		}
		if tags := s.UserTags("1"); len(tags) != 0 {
			t.Fatalf("outage %s changed the user: %v", c.outage, tags)
		}
	}

	// Hang: a client with a timeout gives up; one without is dropped when the outage ends.
	s.SetOutage(DownHang)
	start := time.Now()
	if st, err := addTag(&http.Client{Timeout: 200 * time.Millisecond}); err == nil {
		t.Fatalf("a held request was answered %d", st)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("the request came back after %v, before its client's timeout", d)
	}
	dropped := make(chan error, 1)
	go func() {
		_, err := addTag(http.DefaultClient)
		dropped <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-dropped:
		t.Fatalf("not held: %v", err)
	default:
	}
	s.SetOutage(Up)
	select {
	case err := <-dropped:
		if err == nil {
			t.Fatal("a request held by the outage got an answer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held request was not released when the outage ended")
	}
	if tags := s.UserTags("1"); len(tags) != 0 {
		t.Fatalf("held requests changed the user: %v", tags)
	}
	var held int
	for _, r := range s.Requests() {
		if r.Status == 0 {
			held++
		}
	}
	if held != 2 {
		t.Fatalf("%d requests recorded as held, want 2", held)
	}

	// Up again: the fake answers normally.
	if st, err := addTag(http.DefaultClient); err != nil || st != http.StatusOK {
		t.Fatalf("after the outage: %d, %v", st, err)
	}
	if _, err := ParseOutage("hang"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseOutage("down"); err == nil {
		t.Fatal(`ParseOutage("down") accepted`)
	}
}
