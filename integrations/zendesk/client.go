package zendesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clvd/clvd/integrations"
)

// Errors the client returns, for errors.Is. Each is wrapped with the request's method and path.
var (
	// ErrClosedTicket: Zendesk refuses any update to a closed ticket (HTTP 422, "Status: closed
	// prevents ticket update"). Permanent for that ticket: a closed ticket never reopens.
	ErrClosedTicket = errors.New("ticket is closed and cannot be updated")
	// ErrNotFound: HTTP 404, the ticket or user does not exist (or was deleted).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: HTTP 401 or 403. The API email/token is wrong or lacks permission;
	// retrying cannot help until someone fixes the credentials.
	ErrUnauthorized = errors.New("unauthorized: check the Zendesk API email and token")
	// ErrInvalidInput: the request cannot succeed as given or configured (bad id, too many
	// tickets, unencodable fields, a base URL that redirects). Permanent: the caller or the
	// configuration must change.
	ErrInvalidInput = errors.New("invalid input")
)

// DefaultRetryAfter is used when a 429 carries no usable Retry-After header.
const DefaultRetryAfter = 60 * time.Second

// MaxBulkTickets is the most tickets one update_many call accepts.
const MaxBulkTickets = 100

const (
	defaultTimeout   = 30 * time.Second
	maxResponseBytes = 1 << 20 // far above any response these calls get; bounds memory on a bad answer
	maxErrorBody     = 512     // bytes of an error body kept in APIError
	maxRetryAfter    = 24 * time.Hour
	userAgent        = "clvd-zendesk/1"
)

// RateLimitError is an HTTP 429: Zendesk's rate limit was hit. RetryAfter comes from the
// Retry-After header (seconds or an HTTP date), DefaultRetryAfter when absent or unreadable.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited (HTTP 429), retry after %s", e.RetryAfter)
}

// Temporary reports true: the same request succeeds once the limit resets.
func (e *RateLimitError) Temporary() bool { return true }

// APIError is any other non-2xx answer. Body is the start of the response body, with the API
// token redacted should it ever be echoed.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// Temporary reports whether retrying the same request may succeed: 5xx (Zendesk trouble) and 409
// (Zendesk's answer when concurrent updates to one ticket collide). Other 4xx are the request's
// fault.
func (e *APIError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusConflict
}

// User is a Zendesk user as clvd needs it.
type User struct {
	ID    string
	Email string // normalised with integrations.NormalizeEmail; "" when the user has none
	Name  string
}

// Client talks to one Zendesk account's REST API with an API token (HTTP Basic
// "{email}/token:{token}"). It is safe for concurrent use.
type Client struct {
	base  *url.URL
	email string
	token string
	http  *http.Client
	now   func() time.Time // Retry-After dates are relative to it; tests replace it
}

// NewClient returns a client for baseURL, e.g. https://acme.zendesk.com: an absolute https URL
// (http only for a loopback host, i.e. a local fake) with no path beyond "/", no query and no
// credentials. A nil httpClient gets a 30-second timeout, so a stalled connection cannot hold a
// worker forever, and does not follow redirects.
func NewClient(baseURL, email, apiToken string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		// Not echoing baseURL: a mistyped URL may carry credentials.
		return nil, fmt.Errorf("zendesk: %w: base URL does not parse", ErrInvalidInput)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("zendesk: %w: base URL must be http or https, like https://acme.zendesk.com", ErrInvalidInput)
	case u.Host == "":
		return nil, fmt.Errorf("zendesk: %w: base URL has no host", ErrInvalidInput)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		// Every request carries the API token in its Authorization header: plain http is only
		// for a fake on this machine (tests, load tests).
		return nil, fmt.Errorf("zendesk: %w: base URL must be https (http only for loopback test servers)", ErrInvalidInput)
	case u.User != nil:
		return nil, fmt.Errorf("zendesk: %w: base URL must not contain credentials", ErrInvalidInput)
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("zendesk: %w: base URL must have no path (got %q); the client adds /api/v2/…", ErrInvalidInput, u.Path)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("zendesk: %w: base URL must have no query or fragment", ErrInvalidInput)
	}
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, fmt.Errorf("zendesk: %w: API email is empty", ErrInvalidInput)
	}
	if apiToken == "" {
		return nil, fmt.Errorf("zendesk: %w: API token is empty", ErrInvalidInput)
	}
	if httpClient == nil {
		httpClient = &http.Client{
			Timeout: defaultTimeout,
			// Following a redirect would turn a PUT or DELETE into a GET that "succeeds"
			// without changing anything; answer the 3xx as an error instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{
		base:  &url.URL{Scheme: u.Scheme, Host: u.Host},
		email: email,
		token: apiToken,
		http:  httpClient,
		now:   time.Now,
	}, nil
}

// GetUser fetches one user: GET /api/v2/users/{id}.json.
func (c *Client) GetUser(ctx context.Context, userID string) (User, error) {
	id, err := checkID("user", userID)
	if err != nil {
		return User{}, err
	}
	var resp struct {
		User *struct {
			ID    json.Number `json:"id"`
			Email string      `json:"email"`
			Name  string      `json:"name"`
		} `json:"user"`
	}
	path := "/api/v2/users/" + id + ".json"
	if err := c.do(ctx, http.MethodGet, path, "", nil, &resp); err != nil {
		return User{}, err
	}
	if resp.User == nil || resp.User.ID == "" {
		return User{}, fmt.Errorf("zendesk: GET %s: response has no user", path)
	}
	return User{
		ID:    resp.User.ID.String(),
		Email: integrations.NormalizeEmail(resp.User.Email),
		Name:  strings.TrimSpace(resp.User.Name),
	}, nil
}

// ticketTags is the ticket object of a tag update. additional_tags and remove_tags change only
// the tags named, unlike "tags", which replaces the whole list and would erase tags agents or
// other integrations set.
type ticketTags struct {
	AdditionalTags []string `json:"additional_tags,omitempty"`
	RemoveTags     []string `json:"remove_tags,omitempty"`
}

// UpdateTicketTags adds and removes tags on one ticket in one call:
// PUT /api/v2/tickets/{id}.json {"ticket":{"additional_tags":[…],"remove_tags":[…]}}. Tags are
// sent as given. With nothing to add or remove it makes no call. A closed ticket gives
// ErrClosedTicket.
func (c *Client) UpdateTicketTags(ctx context.Context, ticketID string, add, remove []string) error {
	id, err := checkID("ticket", ticketID)
	if err != nil {
		return err
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	body := map[string]ticketTags{"ticket": {AdditionalTags: add, RemoveTags: remove}}
	return c.do(ctx, http.MethodPut, "/api/v2/tickets/"+id+".json", "", body, nil)
}

// UpdateManyTicketTags does what UpdateTicketTags does for up to MaxBulkTickets tickets in one
// call: PUT /api/v2/tickets/update_many.json?ids=1,2,3 with the same ticket object. Zendesk
// answers with a queued job_status whose id is returned; per-ticket failures (e.g. a closed
// ticket among them) show up in that job's results, not here. With nothing to add or remove it
// makes no call and returns "".
func (c *Client) UpdateManyTicketTags(ctx context.Context, ticketIDs []string, add, remove []string) (jobID string, err error) {
	if len(ticketIDs) == 0 || len(ticketIDs) > MaxBulkTickets {
		return "", fmt.Errorf("zendesk: %w: update_many takes 1 to %d tickets, got %d", ErrInvalidInput, MaxBulkTickets, len(ticketIDs))
	}
	ids := make([]string, len(ticketIDs))
	for i, raw := range ticketIDs {
		if ids[i], err = checkID("ticket", raw); err != nil {
			return "", err
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return "", nil
	}
	var resp struct {
		JobStatus *struct {
			ID string `json:"id"`
		} `json:"job_status"`
	}
	const path = "/api/v2/tickets/update_many.json"
	body := map[string]ticketTags{"ticket": {AdditionalTags: add, RemoveTags: remove}}
	// The ids are digits only (checkID), so the comma list needs no escaping; Zendesk documents it
	// with literal commas.
	if err := c.do(ctx, http.MethodPut, path, "ids="+strings.Join(ids, ","), body, &resp); err != nil {
		return "", err
	}
	if resp.JobStatus == nil || resp.JobStatus.ID == "" {
		return "", fmt.Errorf("zendesk: PUT %s: response has no job_status id", path)
	}
	return resp.JobStatus.ID, nil
}

// UpdateUserTags adds tags to a user (PUT /api/v2/users/{id}/tags.json {"tags":[…]}) and removes
// tags (DELETE on the same path with the same body), each call only when its list is non-empty.
// Adding goes first so that a tier change never leaves the user without a tier if the second call
// fails. Zendesk only accepts these calls when "Tags on users and organizations" is enabled in
// Admin Center.
func (c *Client) UpdateUserTags(ctx context.Context, userID string, add, remove []string) error {
	id, err := checkID("user", userID)
	if err != nil {
		return err
	}
	path := "/api/v2/users/" + id + "/tags.json"
	if len(add) > 0 {
		if err := c.do(ctx, http.MethodPut, path, "", map[string][]string{"tags": add}, nil); err != nil {
			return err
		}
	}
	if len(remove) > 0 {
		if err := c.do(ctx, http.MethodDelete, path, "", map[string][]string{"tags": remove}, nil); err != nil {
			return err
		}
	}
	return nil
}

// SetUserFields sets custom user fields (by field key): PUT /api/v2/users/{id}.json
// {"user":{"user_fields":{…}}}. Fields not named are left alone. An empty map makes no call.
func (c *Client) SetUserFields(ctx context.Context, userID string, fields map[string]any) error {
	id, err := checkID("user", userID)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return nil
	}
	body := map[string]map[string]map[string]any{"user": {"user_fields": fields}}
	return c.do(ctx, http.MethodPut, "/api/v2/users/"+id+".json", "", body, nil)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkID refuses anything but a decimal id: ids are spliced into request paths.
func checkID(what, raw string) (string, error) {
	id, err := canonicalID(raw)
	if err != nil || id == "0" {
		return "", fmt.Errorf("zendesk: %w: %s id %.40q is not a positive integer", ErrInvalidInput, what, raw)
	}
	return id, nil
}

// do sends one request and classifies the answer. reqBody, when non-nil, is sent as JSON; out,
// when non-nil, receives the decoded 2xx body.
func (c *Client) do(ctx context.Context, method, path, rawQuery string, reqBody, out any) error {
	return c.doWithHeader(ctx, method, path, rawQuery, nil, reqBody, out)
}

// doWithHeader is do with extra request headers (e.g. Idempotency-Key).
func (c *Client) doWithHeader(ctx context.Context, method, path, rawQuery string, header http.Header, reqBody, out any) error {
	where := method + " " + path
	var body io.Reader
	if reqBody != nil {
		data, err := json.Marshal(reqBody)
		if err != nil {
			return fmt.Errorf("zendesk: %s: %w: encoding request: %v", where, ErrInvalidInput, err)
		}
		body = bytes.NewReader(data)
	}
	u := *c.base
	u.Path = path
	u.RawQuery = rawQuery
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("zendesk: %s: %w", where, err)
	}
	req.SetBasicAuth(c.email+"/token", c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// Network failure, timeout or cancellation. *url.Error names only the URL, which holds
		// no credentials: they travel in the Authorization header.
		return fmt.Errorf("zendesk: %s: %w", where, err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if resp.Request != nil && resp.Request.Method != method {
		// A caller-supplied http.Client followed a 301/302/303, which Go replays as a GET: the
		// 2xx that follows says nothing about the update.
		return fmt.Errorf("zendesk: %s: %w: redirected to %s, which turned the request into a %s; configure the final base URL",
			where, ErrInvalidInput, resp.Request.URL.Redacted(), resp.Request.Method)
	}

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if out == nil {
			// The change is made whatever the rest of the body says; a read error after a 2xx
			// must not make the caller retry a done update.
			return nil
		}
		if readErr != nil {
			return fmt.Errorf("zendesk: %s: reading response: %w", where, readErr)
		}
		if len(data) > maxResponseBytes {
			return fmt.Errorf("zendesk: %s: response larger than %d bytes", where, maxResponseBytes)
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("zendesk: %s: decoding response: %v", where, err)
		}
		return nil
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("zendesk: %s: %w", where, &RateLimitError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.now())})
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("zendesk: %s: HTTP %d: %w", where, code, ErrUnauthorized)
	case code == http.StatusNotFound:
		return fmt.Errorf("zendesk: %s: HTTP 404: %w", where, ErrNotFound)
	case code == http.StatusUnprocessableEntity && isClosedTicket(data):
		return fmt.Errorf("zendesk: %s: HTTP 422: %w", where, ErrClosedTicket)
	default:
		return fmt.Errorf("zendesk: %s: %w", where, &APIError{Status: code, Body: c.errorBody(data)})
	}
}

// isClosedTicket recognises Zendesk's refusal to touch a closed ticket: a 422 RecordInvalid whose
// details say "Status: closed prevents ticket update". Some answers also carry an error code
// "ClosedTicket" in the details; either is enough, so a reworded description still matches.
func isClosedTicket(body []byte) bool {
	if bytes.Contains(bytes.ToLower(body), []byte("closed prevents ticket update")) {
		return true
	}
	var parsed struct {
		Details map[string][]struct {
			Error string `json:"error"`
		} `json:"details"`
	}
	if json.Unmarshal(body, &parsed) != nil {
		return false
	}
	for _, items := range parsed.Details {
		for _, item := range items {
			if strings.EqualFold(item.Error, "ClosedTicket") {
				return true
			}
		}
	}
	return false
}

// errorBody keeps the start of an error answer for logs: valid UTF-8, at most maxErrorBody bytes,
// and never the API token, whatever the server echoed.
func (c *Client) errorBody(data []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(data), "\uFFFD"))
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, "[redacted]")
	}
	if len(s) <= maxErrorBody {
		return s
	}
	cut := maxErrorBody
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date (RFC 9110). A date in the
// past means "now" (0); an absent or unreadable header gives DefaultRetryAfter; absurd values are
// capped at a day so a bad header cannot park a worker for years.
func retryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return DefaultRetryAfter
	}
	if secs, err := strconv.ParseInt(header, 10, 64); err == nil {
		if secs < 0 {
			return DefaultRetryAfter
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(header); err == nil {
		d := at.Sub(now)
		switch {
		case d < 0:
			return 0
		case d > maxRetryAfter:
			return maxRetryAfter
		}
		return d
	}
	return DefaultRetryAfter
}
