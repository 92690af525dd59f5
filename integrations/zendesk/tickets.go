package zendesk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// NewTicket is a ticket clvd opens (retention outreach). The comment is private: an internal note
// for the team, so Zendesk's default triggers do not e-mail the customer about it.
type NewTicket struct {
	Subject string
	Body    string // the first comment, private
	// RequesterID is the customer's Zendesk user id; when empty, RequesterEmail (and
	// RequesterName) name the requester, whom Zendesk creates as an end user if unknown; with
	// neither, the API user is the requester.
	RequesterID    string
	RequesterEmail string
	RequesterName  string
	Tags           []string
	GroupID        string // optional
	AssigneeID     string // optional
	Priority       string // optional: low, normal, high, urgent
}

// CreateTicket opens a ticket: POST /api/v2/tickets.json {"ticket":{subject, comment:{body,
// public:false}, requester_id | requester:{email,name}, tags, group_id, assignee_id, priority}} and
// returns its id. idempotencyKey, when not empty, is sent as Zendesk's Idempotency-Key header: a
// retry with the same key and body within Zendesk's window returns the ticket the first call made
// instead of creating another, so a worker that crashed after the call and before recording its
// result does not open a second ticket.
func (c *Client) CreateTicket(ctx context.Context, t NewTicket, idempotencyKey string) (string, error) {
	if strings.TrimSpace(t.Subject) == "" || strings.TrimSpace(t.Body) == "" {
		return "", fmt.Errorf("zendesk: create ticket: %w: subject and body are required", ErrInvalidInput)
	}
	ticket := map[string]any{
		"subject": t.Subject,
		"comment": map[string]any{"body": t.Body, "public": false},
	}
	switch {
	case t.RequesterID != "":
		id, err := checkID("requester", t.RequesterID)
		if err != nil {
			return "", err
		}
		ticket["requester_id"] = json.Number(id)
	case t.RequesterEmail != "":
		r := map[string]string{"email": t.RequesterEmail}
		if t.RequesterName != "" {
			r["name"] = t.RequesterName
		}
		ticket["requester"] = r
	}
	if len(t.Tags) > 0 {
		ticket["tags"] = t.Tags
	}
	for key, raw := range map[string]string{"group_id": t.GroupID, "assignee_id": t.AssigneeID} {
		if raw == "" {
			continue
		}
		id, err := checkID(strings.TrimSuffix(key, "_id"), raw)
		if err != nil {
			return "", err
		}
		ticket[key] = json.Number(id)
	}
	if t.Priority != "" {
		ticket["priority"] = t.Priority
	}
	var header http.Header
	if idempotencyKey != "" {
		header = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var resp struct {
		Ticket *struct {
			ID json.Number `json:"id"`
		} `json:"ticket"`
	}
	const path = "/api/v2/tickets.json"
	if err := c.doWithHeader(ctx, http.MethodPost, path, "", header, map[string]any{"ticket": ticket}, &resp); err != nil {
		return "", err
	}
	if resp.Ticket == nil {
		return "", fmt.Errorf("zendesk: POST %s: response has no ticket", path)
	}
	id, err := checkID("ticket", resp.Ticket.ID.String())
	if err != nil {
		return "", fmt.Errorf("zendesk: POST %s: response ticket id: %w", path, err)
	}
	return id, nil
}
