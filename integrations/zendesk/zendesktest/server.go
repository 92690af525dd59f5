// Package zendesktest is an in-memory fake of the parts of Zendesk's REST API that clvd uses,
// served over HTTP by net/http/httptest. It is meant for unit tests, end-to-end tests and load
// tests of code that talks to Zendesk.
//
// The fake checks requests the way Zendesk would and answers in Zendesk's shapes: API-token Basic
// auth ("{email}/token:{token}", 401 otherwise), JSON bodies with Content-Type application/json,
// 404 for unknown tickets and users, 422 "Status: closed prevents ticket update" for closed
// tickets. It is deliberately stricter than Zendesk in one way: Zendesk ignores attributes it does
// not know, the fake answers 400, so a client that misspells a field fails a test instead of
// silently doing nothing in production.
//
// Served endpoints:
//
//	POST   /api/v2/tickets.json                 {"ticket":{subject, comment, requester_id | requester, tags, group_id, assignee_id, priority}}, honouring Idempotency-Key
//	GET    /api/v2/tickets/{id}.json
//	PUT    /api/v2/tickets/{id}.json            {"ticket":{"additional_tags":[…],"remove_tags":[…]}}
//	PUT    /api/v2/tickets/update_many.json?ids=1,2,3   same body; answers a job_status
//	GET    /api/v2/job_statuses/{id}.json
//	GET    /api/v2/users/{id}.json
//	PUT    /api/v2/users/{id}.json              {"user":{"user_fields":{…}}}
//	PUT    /api/v2/users/{id}/tags.json         {"tags":[…]} adds
//	DELETE /api/v2/users/{id}/tags.json         {"tags":[…]} removes
//	GET    /api/v2/apps/{id}/public_key.pem     an app's JWT public key (apps.go)
//
// All methods are safe for concurrent use.
package zendesktest

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxBodyBytes bounds what the fake reads of a request body; bigger bodies get 413.
const maxBodyBytes = 1 << 20

// MaxBulkTickets is how many ids update_many accepts, as in Zendesk.
const MaxBulkTickets = 100

// RecordedRequest is one request the fake received, in arrival order.
type RecordedRequest struct {
	Method      string
	Path        string // URL path, e.g. /api/v2/tickets/7.json
	RawQuery    string // e.g. ids=1,2,3
	ContentType string
	Body        []byte
	Time        time.Time
	Status      int // the status the fake answered; 0 for none (held by a DownHang outage)
}

// Fault is a canned failure answer for FailNextWith.
type Fault struct {
	Status int
	Header http.Header // e.g. Retry-After
	Body   string      // sent as is; a JSON error body when empty
}

// Server is the fake Zendesk. Create it with New; URL is its base URL, to hand to
// zendesk.NewClient.
type Server struct {
	URL string

	srv   *httptest.Server
	email string
	token string

	mu         sync.Mutex
	tickets    map[string]*ticket
	users      map[string]*user
	jobs       map[string]map[string]any
	jobSeq     int
	requests   []RecordedRequest
	queued     []Fault
	rng        *rand.Rand
	rate429    float64
	rate5xx    float64
	retryAfter time.Duration
	outage     Outage
	outageEnd  chan struct{} // closed when the current outage ends; held requests wait on it
	now        func() time.Time
	created    createdTickets // tickets.go: POST /api/v2/tickets.json
}

type ticket struct {
	status string
	tags   []string
}

type user struct {
	email  string
	name   string
	tags   []string
	fields map[string]any
}

// New starts a fake Zendesk account that accepts the API token token for the agent email. With a
// non-nil tb the server is closed when the test ends; pass nil from non-test code (e.g. a load
// test tool) and call Close yourself.
func New(tb testing.TB, email, token string) *Server {
	s := &Server{
		email:      email,
		token:      token,
		tickets:    map[string]*ticket{},
		users:      map[string]*user{},
		jobs:       map[string]map[string]any{},
		rng:        rand.New(rand.NewPCG(1, 1)),
		retryAfter: time.Second,
		now:        time.Now,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	if tb != nil {
		tb.Helper()
		tb.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down. Calling it twice is harmless.
func (s *Server) Close() { s.srv.Close() }

// AddTicket creates (or replaces) a ticket with the given status (new, open, pending, hold,
// solved or closed; closed tickets refuse updates) and tags.
func (s *Server) AddTicket(id, status string, tags ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &ticket{status: strings.ToLower(status)}
	t.tags = addTags(t.tags, tags)
	s.tickets[id] = t
}

// AddUser creates (or replaces) a user with no tags and no user fields.
func (s *Server) AddUser(id, email, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = &user{email: email, name: name, fields: map[string]any{}}
}

// TicketTags returns a ticket's tags, sorted; nil for an unknown ticket.
func (s *Server) TicketTags(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tickets[id]; ok {
		return sortedCopy(t.tags)
	}
	return nil
}

// TicketStatus returns a ticket's status; "" for an unknown ticket.
func (s *Server) TicketStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tickets[id]; ok {
		return t.status
	}
	return ""
}

// UserTags returns a user's tags, sorted; nil for an unknown user.
func (s *Server) UserTags(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[id]; ok {
		return sortedCopy(u.tags)
	}
	return nil
}

// UserFields returns a copy of a user's custom fields (values as decoded from JSON: string,
// float64, bool, nil, …); nil for an unknown user.
func (s *Server) UserFields(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return nil
	}
	out := make(map[string]any, len(u.fields))
	for k, v := range u.fields {
		out[k] = v
	}
	return out
}

// Requests returns a copy of every request received so far, faulted and refused ones included.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.requests))
	for i, r := range s.requests {
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// ResetRequests forgets the recorded requests (state is kept), e.g. between test phases.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// SetFaults makes each later request fail at random, before auth or any change of state: with
// probability rate429 a 429 carrying Retry-After (retryAfter rounded up to whole seconds), with
// probability rate5xx a 503. Zero rates turn random faults off. Draws come from a
// deterministic source (see SetSeed), so a run with the same requests fails the same way.
func (s *Server) SetFaults(rate429, rate5xx float64, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate429, s.rate5xx, s.retryAfter = rate429, rate5xx, retryAfter
}

// SetSeed reseeds the random source behind SetFaults (the default seed is 1).
func (s *Server) SetSeed(seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rng = rand.New(rand.NewPCG(seed, seed))
}

// FailNext makes the next n requests fail with status, before auth or any change of state. A 429
// carries Retry-After from SetFaults' retryAfter (1s unless set).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := Fault{Status: status}
	if status == http.StatusTooManyRequests {
		f.Header = http.Header{"Retry-After": {retryAfterSeconds(s.retryAfter)}}
	}
	for range n {
		s.queued = append(s.queued, f)
	}
}

// FailNextWith makes the next n requests answer f exactly, e.g. a 429 with an HTTP-date
// Retry-After or with none at all.
func (s *Server) FailNextWith(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.queued = append(s.queued, f)
	}
}

// Outage is how a Zendesk that is down answers every request: see SetOutage.
type Outage int

const (
	// Up answers normally (apart from SetFaults' random faults and FailNext's queued ones).
	Up Outage = iota
	// Down429 answers every request 429 with Retry-After (SetFaults' retryAfter): a rate limit that
	// does not lift.
	Down429
	// Down500 answers every request 500.
	Down500
	// DownHang answers nothing: each request is held until its client gives up (its timeout) or the
	// outage ends, and its connection is then dropped without an answer.
	DownHang
)

func (o Outage) String() string {
	switch o {
	case Up:
		return "up"
	case Down429:
		return "429"
	case Down500:
		return "500"
	case DownHang:
		return "hang"
	}
	return fmt.Sprintf("Outage(%d)", int(o))
}

// ParseOutage reads an outage mode by its String: "429", "500" or "hang" (or "up").
func ParseOutage(s string) (Outage, error) {
	for _, o := range []Outage{Up, Down429, Down500, DownHang} {
		if s == o.String() {
			return o, nil
		}
	}
	return Up, fmt.Errorf("unknown Zendesk outage %q: want 429, 500 or hang", s)
}

// SetOutage makes every later request fail the same way, before auth or any change of state, until
// it is called again with Up. Requests held by DownHang are released (and dropped) when it ends.
// Held requests are recorded with Status 0.
func (s *Server) SetOutage(o Outage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage == o {
		return
	}
	if s.outageEnd != nil {
		close(s.outageEnd)
		s.outageEnd = nil
	}
	s.outage = o
	if o != Up {
		s.outageEnd = make(chan struct{})
	}
}

// hold blocks a request while the fake is in a DownHang outage, and reports whether it did: the
// request is then recorded unanswered and its connection dropped.
func (s *Server) hold(r *http.Request) bool {
	s.mu.Lock()
	if s.outage != DownHang {
		s.mu.Unlock()
		return false
	}
	end := s.outageEnd
	s.requests = append(s.requests, RecordedRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type"), Time: s.now()})
	s.mu.Unlock()
	select {
	case <-end:
	case <-r.Context().Done():
	}
	return true
}

// answer is what a handler decided to send.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func jsonAnswer(status int, v any) answer {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"error":"InternalError"}`)
		status = http.StatusInternalServerError
	}
	return answer{status: status, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: data}
}

func errorAnswer(status int, code, description string) answer {
	return jsonAnswer(status, map[string]string{"error": code, "description": description})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.hold(r) {
		panic(http.ErrAbortHandler) // drops the connection: no answer at all
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	rec := RecordedRequest{
		Method:      r.Method,
		Path:        r.URL.Path,
		RawQuery:    r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
	}

	// One lock for the whole request: the fake's work is tiny, and serialising makes every
	// request's effect atomic, as a test expects of Zendesk.
	s.mu.Lock()
	rec.Time = s.now()
	var a answer
	switch {
	case err != nil:
		a = errorAnswer(http.StatusBadRequest, "InvalidBody", "could not read the request body")
	case len(body) > maxBodyBytes:
		a = errorAnswer(http.StatusRequestEntityTooLarge, "TooLarge", "request body too large")
	default:
		a = s.handle(r, body)
	}
	rec.Status = a.status
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	for k, vs := range a.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// handle runs with s.mu held.
func (s *Server) handle(r *http.Request, body []byte) answer {
	if f, ok := s.nextFault(); ok {
		return f
	}
	if !s.authorised(r) {
		return jsonAnswer(http.StatusUnauthorized, map[string]string{"error": "Couldn't authenticate you"})
	}
	if len(body) > 0 || r.Method == http.MethodPut {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			return errorAnswer(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body must be sent with Content-Type: application/json")
		}
	}

	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v2/")
	if !ok {
		return errorAnswer(http.StatusNotFound, "InvalidEndpoint", "Not found")
	}
	segs := strings.Split(rest, "/")
	if a, ok := s.handleInstall(r, segs, body); ok { // install.go: users/me, webhooks, triggers, user_fields
		return a
	}
	if a, ok := s.handleApps(r, segs); ok { // apps.go: apps/{id}/public_key.pem
		return a
	}
	switch {
	case len(segs) == 1 && segs[0] == "tickets.json":
		if r.Method != http.MethodPost {
			return methodNotAllowed("POST")
		}
		return s.createTicket(r, body)
	case len(segs) == 2 && segs[0] == "tickets" && segs[1] == "update_many.json":
		if r.Method != http.MethodPut {
			return methodNotAllowed("PUT")
		}
		return s.updateMany(r, body)
	case len(segs) == 2 && segs[0] == "tickets":
		id, ok := jsonID(segs[1])
		if !ok {
			return errorAnswer(http.StatusNotFound, "InvalidEndpoint", "Not found")
		}
		switch r.Method {
		case http.MethodGet:
			return s.showTicket(id)
		case http.MethodPut:
			return s.updateTicket(id, body)
		}
		return methodNotAllowed("GET, PUT")
	case len(segs) == 2 && segs[0] == "job_statuses":
		id, found := strings.CutSuffix(segs[1], ".json")
		if !found || r.Method != http.MethodGet {
			return methodNotAllowed("GET")
		}
		job, ok := s.jobs[id]
		if !ok {
			return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
		}
		return jsonAnswer(http.StatusOK, map[string]any{"job_status": job})
	case len(segs) == 2 && segs[0] == "users":
		id, ok := jsonID(segs[1])
		if !ok {
			return errorAnswer(http.StatusNotFound, "InvalidEndpoint", "Not found")
		}
		switch r.Method {
		case http.MethodGet:
			return s.showUser(id)
		case http.MethodPut:
			return s.updateUser(id, body)
		}
		return methodNotAllowed("GET, PUT")
	case len(segs) == 3 && segs[0] == "users" && segs[2] == "tags.json":
		id, ok := jsonID(segs[1] + ".json")
		if !ok {
			return errorAnswer(http.StatusNotFound, "InvalidEndpoint", "Not found")
		}
		switch r.Method {
		case http.MethodPut:
			return s.userTags(id, body, true)
		case http.MethodDelete:
			return s.userTags(id, body, false)
		}
		return methodNotAllowed("PUT, DELETE")
	}
	return errorAnswer(http.StatusNotFound, "InvalidEndpoint", "Not found")
}

func (s *Server) nextFault() (answer, bool) {
	var f Fault
	switch {
	case s.outage == Down429:
		f = Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {retryAfterSeconds(s.retryAfter)}}}
	case s.outage == Down500:
		f = Fault{Status: http.StatusInternalServerError}
	case len(s.queued) > 0:
		f = s.queued[0]
		s.queued = s.queued[1:]
	case s.rate429 > 0 || s.rate5xx > 0:
		p := s.rng.Float64()
		switch {
		case p < s.rate429:
			f = Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {retryAfterSeconds(s.retryAfter)}}}
		case p < s.rate429+s.rate5xx:
			f = Fault{Status: http.StatusServiceUnavailable}
		default:
			return answer{}, false
		}
	default:
		return answer{}, false
	}
	a := errorAnswer(f.Status, "InjectedFault", "failure injected by zendesktest")
	if f.Body != "" {
		a.body = []byte(f.Body)
	}
	for k, vs := range f.Header {
		a.header[k] = slices.Clone(vs)
	}
	return a, true
}

func (s *Server) authorised(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.email+"/token")) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.token)) == 1
	return userOK && passOK
}

// tagChange is the ticket object of a tag update; the fields are the only ones the fake accepts.
type tagChange struct {
	AdditionalTags []string `json:"additional_tags"`
	RemoveTags     []string `json:"remove_tags"`
}

func (s *Server) showTicket(id string) answer {
	t, ok := s.tickets[id]
	if !ok {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
	}
	return jsonAnswer(http.StatusOK, map[string]any{"ticket": s.ticketJSON(id, t)})
}

func (s *Server) updateTicket(id string, body []byte) answer {
	var req struct {
		Ticket *tagChange `json:"ticket"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	if req.Ticket == nil {
		return badRequest(`body must be {"ticket":{…}}`)
	}
	t, ok := s.tickets[id]
	if !ok {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
	}
	if t.status == "closed" {
		return closedTicketAnswer()
	}
	applyTagChange(t, *req.Ticket)
	return jsonAnswer(http.StatusOK, map[string]any{"ticket": s.ticketJSON(id, t)})
}

// updateMany applies the change to each ticket at once and answers a completed job_status.
// Zendesk queues the job and fills results later; the per-ticket result shape here is the fake's
// own (id, success, and status or error).
func (s *Server) updateMany(r *http.Request, body []byte) answer {
	rawIDs := r.URL.Query().Get("ids")
	if rawIDs == "" {
		return badRequest("ids query parameter is required")
	}
	parts := strings.Split(rawIDs, ",")
	if len(parts) > MaxBulkTickets {
		return badRequest(fmt.Sprintf("at most %d ids", MaxBulkTickets))
	}
	ids := make([]string, len(parts))
	for i, p := range parts {
		id, ok := jsonID(p + ".json")
		if !ok {
			return badRequest(fmt.Sprintf("ids: %q is not a ticket id", p))
		}
		ids[i] = id
	}
	var req struct {
		Ticket *tagChange `json:"ticket"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	if req.Ticket == nil {
		return badRequest(`body must be {"ticket":{…}}`)
	}

	results := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		n, _ := strconv.ParseInt(id, 10, 64)
		t, ok := s.tickets[id]
		switch {
		case !ok:
			results = append(results, map[string]any{"id": n, "success": false, "error": "TicketNotFound"})
		case t.status == "closed":
			results = append(results, map[string]any{"id": n, "success": false, "error": "Status: closed prevents ticket update"})
		default:
			applyTagChange(t, *req.Ticket)
			results = append(results, map[string]any{"id": n, "action": "update", "success": true, "status": "Updated"})
		}
	}
	s.jobSeq++
	jobID := fmt.Sprintf("%032x", s.jobSeq) // Zendesk job ids are 32 hex digits
	job := map[string]any{
		"id":       jobID,
		"url":      s.URL + "/api/v2/job_statuses/" + jobID + ".json",
		"status":   "completed",
		"total":    len(ids),
		"progress": len(ids),
		"results":  results,
	}
	s.jobs[jobID] = job
	return jsonAnswer(http.StatusOK, map[string]any{"job_status": job})
}

func (s *Server) showUser(id string) answer {
	u, ok := s.users[id]
	if !ok {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
	}
	return jsonAnswer(http.StatusOK, map[string]any{"user": userJSON(id, u)})
}

func (s *Server) updateUser(id string, body []byte) answer {
	var req struct {
		User *struct {
			UserFields map[string]any `json:"user_fields"`
		} `json:"user"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	if req.User == nil || req.User.UserFields == nil {
		return badRequest(`body must be {"user":{"user_fields":{…}}}`)
	}
	u, ok := s.users[id]
	if !ok {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
	}
	for k, v := range req.User.UserFields {
		u.fields[k] = v
	}
	return jsonAnswer(http.StatusOK, map[string]any{"user": userJSON(id, u)})
}

func (s *Server) userTags(id string, body []byte, add bool) answer {
	var req struct {
		Tags []string `json:"tags"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	if len(req.Tags) == 0 {
		return badRequest(`body must be {"tags":[…]} with at least one tag`)
	}
	u, ok := s.users[id]
	if !ok {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
	}
	if add {
		u.tags = addTags(u.tags, req.Tags)
	} else {
		u.tags = removeTags(u.tags, req.Tags)
	}
	return jsonAnswer(http.StatusOK, map[string]any{"tags": sortedCopy(u.tags)})
}

func (s *Server) ticketJSON(id string, t *ticket) map[string]any {
	n, _ := strconv.ParseInt(id, 10, 64)
	return map[string]any{"id": n, "status": t.status, "tags": sortedCopy(t.tags)}
}

func userJSON(id string, u *user) map[string]any {
	n, _ := strconv.ParseInt(id, 10, 64)
	return map[string]any{"id": n, "email": u.email, "name": u.name, "tags": sortedCopy(u.tags), "user_fields": u.fields}
}

func applyTagChange(t *ticket, c tagChange) {
	// Additions first, then removals: a tag named in both lists ends up removed.
	t.tags = addTags(t.tags, c.AdditionalTags)
	t.tags = removeTags(t.tags, c.RemoveTags)
}

// normalizeTag mimics Zendesk storing tags lower case with spaces turned into underscores.
func normalizeTag(tag string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(tag)), " ", "_")
}

func addTags(have, add []string) []string {
	for _, tag := range add {
		if tag = normalizeTag(tag); tag != "" && !slices.Contains(have, tag) {
			have = append(have, tag)
		}
	}
	return have
}

func removeTags(have, remove []string) []string {
	for _, tag := range remove {
		tag = normalizeTag(tag)
		have = slices.DeleteFunc(have, func(t string) bool { return t == tag })
	}
	return have
}

func sortedCopy(tags []string) []string {
	out := slices.Clone(tags)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown fields; it returns a
// message for a 400, or "".
func decodeStrict(body []byte, v any) string {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return "invalid JSON body: " + err.Error()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "invalid JSON body: data after the JSON value"
	}
	return ""
}

func badRequest(description string) answer {
	return errorAnswer(http.StatusBadRequest, "InvalidParameter", description)
}

func methodNotAllowed(allow string) answer {
	a := errorAnswer(http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
	a.header.Set("Allow", allow)
	return a
}

// closedTicketAnswer is the answer Zendesk gives to an update of a closed ticket.
func closedTicketAnswer() answer {
	return jsonAnswer(http.StatusUnprocessableEntity, map[string]any{
		"error":       "RecordInvalid",
		"description": "Record validation errors",
		"details": map[string]any{
			"status": []map[string]string{{"description": "Status: closed prevents ticket update"}},
		},
	})
}

// jsonID takes "123.json" to "123"; anything but a positive decimal id is refused.
func jsonID(segment string) (string, bool) {
	id, found := strings.CutSuffix(segment, ".json")
	if !found || id == "" || len(id) > 19 {
		return "", false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

func retryAfterSeconds(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 0 {
		secs = 0
	}
	return strconv.FormatInt(secs, 10)
}
