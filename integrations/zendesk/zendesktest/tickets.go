package zendesktest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// CreatedTicket is a ticket created through POST /api/v2/tickets.json.
type CreatedTicket struct {
	ID             string
	Subject        string
	Body           string
	Public         bool
	RequesterID    string
	RequesterEmail string
	Tags           []string
	GroupID        string
	AssigneeID     string
	Priority       string
	IdempotencyKey string
}

type createdTickets struct {
	list []CreatedTicket
	seq  int
	// byKey remembers each Idempotency-Key's request body and answer, as Zendesk does: the same key
	// with the same body answers the first ticket again (header x-idempotency-lookup: hit), the same
	// key with another body is refused.
	byKey map[string]idempotentCall
}

type idempotentCall struct {
	body []byte
	id   string
}

// CreatedTickets returns the tickets created through the API, in order.
func (s *Server) CreatedTickets() []CreatedTicket {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CreatedTicket, len(s.created.list))
	for i, t := range s.created.list {
		t.Tags = slices.Clone(t.Tags)
		out[i] = t
	}
	return out
}

func (s *Server) createTicket(r *http.Request, body []byte) answer {
	key := r.Header.Get("Idempotency-Key")
	if key != "" {
		if prev, ok := s.created.byKey[key]; ok {
			if !bytes.Equal(prev.body, body) {
				return errorAnswer(http.StatusBadRequest, "IdempotentRequestError", "Idempotency key was already used with a different request")
			}
			a := jsonAnswer(http.StatusCreated, map[string]any{"ticket": s.ticketJSON(prev.id, s.tickets[prev.id])})
			a.header.Set("X-Idempotency-Lookup", "hit")
			return a
		}
	}
	var req struct {
		Ticket *struct {
			Subject string `json:"subject"`
			Comment *struct {
				Body   string `json:"body"`
				Public *bool  `json:"public"`
			} `json:"comment"`
			RequesterID *json.Number `json:"requester_id"`
			Requester   *struct {
				Email string `json:"email"`
				Name  string `json:"name"`
			} `json:"requester"`
			Tags       []string     `json:"tags"`
			GroupID    *json.Number `json:"group_id"`
			AssigneeID *json.Number `json:"assignee_id"`
			Priority   string       `json:"priority"`
		} `json:"ticket"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	t := req.Ticket
	switch {
	case t == nil:
		return badRequest(`body must be {"ticket":{…}}`)
	case t.Comment == nil || t.Comment.Body == "":
		return errorAnswer(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors: comment: cannot be blank")
	case t.RequesterID != nil && t.Requester != nil:
		return badRequest("give requester_id or requester, not both")
	case t.Priority != "" && !slices.Contains([]string{"low", "normal", "high", "urgent"}, t.Priority):
		return errorAnswer(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors: priority: is invalid")
	}
	ct := CreatedTicket{Subject: t.Subject, Body: t.Comment.Body, Public: t.Comment.Public == nil || *t.Comment.Public,
		Tags: slices.Clone(t.Tags), Priority: t.Priority, IdempotencyKey: key}
	if t.RequesterID != nil {
		ct.RequesterID = t.RequesterID.String()
		if _, ok := s.users[ct.RequesterID]; !ok {
			return errorAnswer(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors: requester: is invalid")
		}
	}
	if t.Requester != nil {
		ct.RequesterEmail = t.Requester.Email
	}
	if t.GroupID != nil {
		ct.GroupID = t.GroupID.String()
	}
	if t.AssigneeID != nil {
		ct.AssigneeID = t.AssigneeID.String()
	}
	s.created.seq++
	ct.ID = strconv.Itoa(900000 + s.created.seq)
	tk := &ticket{status: "new"}
	tk.tags = addTags(tk.tags, ct.Tags)
	s.tickets[ct.ID] = tk
	s.created.list = append(s.created.list, ct)
	if key != "" {
		if s.created.byKey == nil {
			s.created.byKey = map[string]idempotentCall{}
		}
		s.created.byKey[key] = idempotentCall{body: bytes.Clone(body), id: ct.ID}
	}
	return jsonAnswer(http.StatusCreated, map[string]any{"ticket": s.ticketJSON(ct.ID, tk)})
}
