package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/internal/logctx"
	"github.com/clvd/clvd/store"
)

// Store is what the handlers need of the system of record.
type Store interface {
	GetTenant(ctx context.Context, id string) (*store.Tenant, error)
	ListTenants(ctx context.Context) ([]store.Tenant, error)
	ResolveCustomer(ctx context.Context, tenantID string, id store.Identity) (int64, bool, error)
	GetCustomer(ctx context.Context, tenantID string, customerID int64) (*store.Customer, error)
	CustomerByZendeskUser(ctx context.Context, tenantID, zendeskUserID string) (*store.Customer, error)
	ApplyOrder(ctx context.Context, tenantID string, customerID int64, o integrations.Order) (bool, error)
	ApplyRefund(ctx context.Context, tenantID string, r integrations.Refund) (int64, bool, error)
	ApplyTicketEvent(ctx context.Context, tenantID string, customerID int64, ev integrations.TicketEvent) (bool, error)
	CustomerOrders(ctx context.Context, tenantID string, customerID int64) ([]store.OrderRecord, error)
	CustomerTickets(ctx context.Context, tenantID string, customerID int64) ([]store.Ticket, error)
	SaveScore(ctx context.Context, tenantID string, customerID int64, basedOnVersion int64, s store.Score) (bool, error)
	TagPlan(ctx context.Context, tenantID string, customerID int64) (*store.TagPlan, error)
	MarkTagsPushed(ctx context.Context, tenantID string, customerID int64, kind, id string, tags []string) error
	MarkTicketClosed(ctx context.Context, tenantID, source, ticketID string) error
	StaleScores(ctx context.Context, changedBefore time.Time, limit int) ([]store.CustomerRef, error)
	UnsyncedTags(ctx context.Context, afterID int64, limit int) ([]store.CustomerRef, error)
	SaveModel(ctx context.Context, m *store.ModelRecord) error
	LatestModel(ctx context.Context, tenantID string) (*store.ModelRecord, error)
	ListModels(ctx context.Context, tenantID string, limit int) ([]store.ModelRecord, error)
	PutTenantState(ctx context.Context, tenantID, key string, value json.RawMessage) error
	GetTenantState(ctx context.Context, tenantID, key string) (json.RawMessage, time.Time, error)
	ForEachCustomerOrders(ctx context.Context, tenantID string, batch int, fn func(int64, []store.OrderRecord) error) error
	CustomerIDs(ctx context.Context, tenantID string, afterID int64, limit int) ([]int64, error)
	MarkUserFieldsPushed(ctx context.Context, tenantID string, customerID int64, userID string, fields map[string]any) error
	ClaimOutreach(ctx context.Context, tenantID string, c store.OutreachClaim) (*store.Outreach, error)
	UpdateOutreach(ctx context.Context, tenantID string, id int64, p store.OutreachProgress) error
	GetOutreach(ctx context.Context, tenantID string, id int64) (*store.Outreach, error)
	PendingOutreach(ctx context.Context, olderThan time.Time, limit int) ([]store.Outreach, error)
}

// Helpdesk is what the handlers need of a helpdesk account's API.
type Helpdesk interface {
	GetUser(ctx context.Context, userID string) (zendesk.User, error)
	UpdateManyTicketTags(ctx context.Context, ticketIDs []string, add, remove []string) (string, error)
	UpdateUserTags(ctx context.Context, userID string, add, remove []string) error
	SetUserFields(ctx context.Context, userID string, fields map[string]any) error
	CreateTicket(ctx context.Context, t zendesk.NewTicket, idempotencyKey string) (string, error)
}

// ErrNoHelpdesk means the tenant has no helpdesk API credentials: nothing can be looked up or pushed.
var ErrNoHelpdesk = errors.New("tenant has no Zendesk API credentials")

// HelpdeskFactory returns the API client of a tenant's helpdesk, or ErrNoHelpdesk.
type HelpdeskFactory func(t *store.Tenant) (Helpdesk, error)

// ZendeskFactory builds Zendesk clients on one shared HTTP client (connection reuse across tenants).
func ZendeskFactory(httpClient *http.Client) HelpdeskFactory {
	return func(t *store.Tenant) (Helpdesk, error) {
		if t.Zendesk.BaseURL == "" || t.Zendesk.Email == "" || t.Zendesk.APIToken == "" {
			return nil, ErrNoHelpdesk
		}
		return zendesk.NewClient(t.Zendesk.BaseURL, t.Zendesk.Email, t.Zendesk.APIToken, httpClient)
	}
}

// Handlers processes every task type. Create with NewHandlers.
type Handlers struct {
	store    Store
	queue    *Queue
	helpdesk HelpdeskFactory
	log      *slog.Logger
	now      func() time.Time
	models   *modelCache
	tenants  *tenantCache
	locks    *locker
	breaker  *breaker
	// reconcileLease is how long one process's reconciler run keeps the others out: just under the
	// period, so each period has exactly one run whatever the number of processes.
	reconcileLease time.Duration
	// reconcileBatch bounds the rows each reconciler scan reads per run (default 5,000).
	reconcileBatch int
	// unsyncedAfter is where the next scan for unsynced tags starts (kept in Redis too, see
	// unsyncedCursor): each run reads one page from there and the next run goes on after it, back to
	// the start at the end. Customers that can never be pushed (their tenant has no helpdesk
	// credentials) stay unsynced; without the cursor a first page full of them would hide every other
	// tenant's lost pushes for good.
	unsyncedAfter atomic.Int64
	Observer      Observer
	// AllowLocalTargets lets outreach webhooks reach http:// and local addresses
	// (CLVD_ALLOW_LOCAL_TARGETS); Outbound is their HTTP client (default: safehttp's, 15 s).
	AllowLocalTargets bool
	// HelpdeskTimeout is how long one helpdesk call may take (CLVD_HELPDESK_TIMEOUT); the breaker's
	// probe is held that long, plus a margin. Default 30 s.
	HelpdeskTimeout time.Duration
	Outbound        *http.Client
	outboundOnce    sync.Once
}

// UseRedis lets the handlers take leases in Redis, so pushes for one customer and reconciler runs
// (scheduled every reconcileEvery by each process) never overlap across worker processes.
func (h *Handlers) UseRedis(rc redis.UniversalClient, reconcileEvery time.Duration) {
	h.locks = &locker{rc: rc}
	h.breaker = &breaker{rc: rc, log: h.log}
	h.reconcileLease = max(reconcileEvery*9/10, 500*time.Millisecond)
}

// Observer is told about finished work, for metrics and end-to-end measurements. Optional.
type Observer interface {
	TagsPushed(tenantID string, customerID int64, kind, id string, tags []string)
}

// NewHandlers wires the handlers.
func NewHandlers(st Store, q *Queue, helpdesk HelpdeskFactory, log *slog.Logger) *Handlers {
	if log == nil {
		log = slog.Default()
	}
	h := &Handlers{store: st, queue: q, helpdesk: helpdesk, log: log, now: time.Now}
	h.models = &modelCache{ttl: 30 * time.Second, entries: map[string]modelEntry{}}
	h.tenants = &tenantCache{ttl: 30 * time.Second, entries: map[string]tenantEntry{}}
	return h
}

// Register adds every handler to mux.
func (h *Handlers) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeIngestOrder, h.handleIngestOrder)
	mux.HandleFunc(TypeIngestTicket, h.handleIngestTicket)
	mux.HandleFunc(TypeRescore, h.handleRescore)
	mux.HandleFunc(TypePushTags, h.handlePushTags)
	mux.HandleFunc(TypeRefit, h.handleRefit)
	mux.HandleFunc(TypeRescoreBatch, h.handleRescoreBatch)
	mux.HandleFunc(TypeRefitAll, h.handleRefitAll)
	mux.HandleFunc(TypeReconcile, h.handleReconcile)
	mux.HandleFunc(TypeOutreach, h.handleOutreach)
}

// LogContext is asynq middleware that puts the task's id, type and retry count into the context, so
// every log line a handler writes (with slog's ...Context methods and a logctx.Handler) names its task.
func LogContext(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		n, _ := asynq.GetRetryCount(ctx)
		ctx = logctx.With(ctx, slog.String("task_id", id), slog.String("task_type", t.Type()), slog.Int("task_retry", n))
		return next.ProcessTask(ctx, t)
	})
}

// withRequestID adds the id of the webhook request that queued an ingest task to the log context.
func withRequestID(ctx context.Context, id string) context.Context {
	if id == "" || !logctx.ValidRequestID(id) {
		return ctx
	}
	return logctx.With(ctx, slog.String(logctx.RequestIDKey, id))
}

// decode reads a task payload; a payload that cannot be decoded will never succeed, so it is not retried.
func decode(t *asynq.Task, v any) error {
	if err := json.Unmarshal(t.Payload(), v); err != nil {
		return fmt.Errorf("%s: undecodable payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return nil
}

// retried reports whether this run is a retry: an earlier run may have stored the change and failed
// before enqueueing the follow-up, so follow-ups are enqueued again.
func retried(ctx context.Context) bool {
	n, ok := asynq.GetRetryCount(ctx)
	return ok && n > 0
}

func (h *Handlers) handleIngestOrder(ctx context.Context, t *asynq.Task) error {
	var p orderPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	ctx = withRequestID(ctx, p.RequestID)
	affected, err := StoreOrderEvent(ctx, h.store, p.TenantID, p.Event, retried(ctx))
	if err != nil {
		return err
	}
	for _, id := range affected {
		if err := h.queue.EnqueueRescore(ctx, p.TenantID, id); err != nil {
			return err
		}
	}
	return nil
}

// OrderStore is what storing an order event needs.
type OrderStore interface {
	ResolveCustomer(ctx context.Context, tenantID string, id store.Identity) (int64, bool, error)
	ApplyOrder(ctx context.Context, tenantID string, customerID int64, o integrations.Order) (bool, error)
	ApplyRefund(ctx context.Context, tenantID string, r integrations.Refund) (int64, bool, error)
}

// StoreOrderEvent stores an order event (the order, matched to its customer, and its refunds) and
// returns the customers whose data changed. With all=true it returns every customer it touched, changed
// or not: a retry must redo the follow-ups a failed first run may have missed. The webhook ingest and
// `clvd import` share it, so an imported order is stored exactly as a delivered one.
func StoreOrderEvent(ctx context.Context, st OrderStore, tenantID string, ev integrations.OrderEvent, all bool) ([]int64, error) {
	var affected []int64
	add := func(id int64, changed bool) {
		if id != 0 && (changed || all) && !slices.Contains(affected, id) {
			affected = append(affected, id)
		}
	}
	if o := ev.Order; o != nil {
		id := store.Identity{Email: o.Email, Name: o.Name}
		if o.CustomerExternalID != "" {
			id.ExternalID = o.Source + ":" + o.CustomerExternalID
		}
		customerID, _, err := st.ResolveCustomer(ctx, tenantID, id)
		if err != nil {
			return nil, fmt.Errorf("resolving customer of order %s: %w", o.OrderID, err)
		}
		changed, err := st.ApplyOrder(ctx, tenantID, customerID, *o)
		if err != nil {
			return nil, fmt.Errorf("storing order %s: %w", o.OrderID, err)
		}
		add(customerID, changed)
	}
	for _, r := range ev.Refunds {
		customerID, changed, err := st.ApplyRefund(ctx, tenantID, r)
		if err != nil {
			return nil, fmt.Errorf("storing refund %s: %w", r.RefundID, err)
		}
		add(customerID, changed)
	}
	return affected, nil
}

func (h *Handlers) handleIngestTicket(ctx context.Context, t *asynq.Task) error {
	var p ticketPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	ctx = withRequestID(ctx, p.RequestID)
	ev := p.Event
	customerID, err := h.ticketCustomer(ctx, p.TenantID, ev)
	if err != nil {
		return err
	}
	changed, err := h.store.ApplyTicketEvent(ctx, p.TenantID, customerID, ev)
	if err != nil {
		return fmt.Errorf("storing ticket event %s: %w", ev.EventID, err)
	}
	if customerID != 0 && (changed || retried(ctx)) {
		return h.queue.EnqueueRescore(ctx, p.TenantID, customerID)
	}
	return nil
}

// ticketCustomer finds the customer a ticket belongs to. Event-subscription payloads carry only the
// requester's id: a requester seen before is found in the store; a new one is looked up once through
// the helpdesk API, and the store keeps the link, so it is never looked up again.
func (h *Handlers) ticketCustomer(ctx context.Context, tenantID string, ev integrations.TicketEvent) (int64, error) {
	if ev.RequesterEmail != "" {
		id, _, err := h.store.ResolveCustomer(ctx, tenantID, store.Identity{Email: ev.RequesterEmail, ZendeskUserID: ev.RequesterID, Name: ev.RequesterName})
		return id, err
	}
	if ev.RequesterID == "" {
		return 0, nil
	}
	c, err := h.store.CustomerByZendeskUser(ctx, tenantID, ev.RequesterID)
	if err == nil {
		return c.ID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	identity := store.Identity{ZendeskUserID: ev.RequesterID}
	hd, err := h.helpdeskFor(ctx, tenantID)
	switch {
	case errors.Is(err, ErrNoHelpdesk):
		h.log.WarnContext(ctx, "ticket requester has no email and the tenant has no Zendesk API credentials: the customer cannot be matched to orders",
			"tenant", tenantID, "requester_id", ev.RequesterID)
	case err != nil:
		return 0, err
	default:
		u, err := hd.GetUser(ctx, ev.RequesterID)
		switch {
		case errors.Is(err, zendesk.ErrNotFound):
			h.log.WarnContext(ctx, "ticket requester not found in Zendesk", "tenant", tenantID, "requester_id", ev.RequesterID)
		case errors.Is(err, zendesk.ErrUnauthorized), errors.Is(err, zendesk.ErrInvalidInput):
			// Retrying cannot help until an admin fixes the credentials: keep the event, linked to the
			// requester's id only (an event with the email, or a later look-up, links it to orders).
			h.log.ErrorContext(ctx, "Zendesk user look-up refused: check the tenant's Zendesk credentials", "tenant", tenantID,
				"requester_id", ev.RequesterID, "error", err)
		case err != nil:
			return 0, classify(fmt.Errorf("looking up Zendesk user %s: %w", ev.RequesterID, err))
		default:
			identity.Email, identity.Name = u.Email, u.Name
		}
	}
	id, _, err := h.store.ResolveCustomer(ctx, tenantID, identity)
	return id, err
}

func (h *Handlers) handleRescore(ctx context.Context, t *asynq.Task) error {
	var p customerPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	return h.rescore(ctx, p.TenantID, p.CustomerID)
}

// rescore recomputes one customer's score and, if the helpdesk is out of step with it, queues a push.
func (h *Handlers) rescore(ctx context.Context, tenantID string, customerID int64) error {
	tenant, err := h.tenants.get(ctx, h.store, tenantID)
	if err != nil {
		return err
	}
	settings, err := ParseSettings(tenant.Settings)
	if err != nil {
		return fmt.Errorf("tenant %s settings: %v: %w", tenantID, err, asynq.SkipRetry)
	}
	cust, err := h.store.GetCustomer(ctx, tenantID, customerID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("customer %d of tenant %s: %w: %w", customerID, tenantID, err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	// The version is read before the data, so a change that lands meanwhile leaves the score marked stale.
	version := cust.DataVersion
	orders, err := h.store.CustomerOrders(ctx, tenantID, customerID)
	if err != nil {
		return err
	}
	tickets, err := h.store.CustomerTickets(ctx, tenantID, customerID)
	if err != nil {
		return err
	}
	scoring, err := h.models.get(ctx, h.store, tenantID)
	if err != nil {
		return err
	}
	now := h.now()
	if scoring.population == nil {
		// A tenant's first events: no population to rank customers against yet. Fit (or fall back to
		// heuristics) and build one now rather than waiting for the nightly refit.
		if _, err := h.queue.EnqueueRefit(ctx, tenantID, "bootstrap:"+now.UTC().Format("2006-01-02T15"), "first scores"); err != nil {
			return err
		}
	}
	score := computeScore(orders, tickets, scoring, settings, now)
	stale, err := h.store.SaveScore(ctx, tenantID, customerID, version, score)
	if err != nil {
		return err
	}
	if stale {
		return nil // a newer rescore already stored its result and queued its push
	}
	if err := h.maybeOutreach(ctx, tenant, customerID, settings, scoring, cust.Score, score); err != nil {
		return err
	}
	// Data stored while this rescore ran may have found this task's id taken (it counts as the same
	// burst) and so queued nothing: if the version moved, rescore once more, under an id of its own
	// (the window's id may still be this very task's).
	if now, err := h.store.GetCustomer(ctx, tenantID, customerID); err != nil {
		return err
	} else if now.DataVersion > version {
		if err := h.queue.enqueueRescoreOfVersion(ctx, tenantID, customerID, version); err != nil {
			return err
		}
	}
	plan, err := h.store.TagPlan(ctx, tenantID, customerID)
	if err != nil {
		return err
	}
	if len(plan.Targets) > 0 {
		return h.queue.EnqueuePush(ctx, tenantID, customerID)
	}
	return nil
}

func (h *Handlers) handlePushTags(ctx context.Context, t *asynq.Task) error {
	var p customerPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	return h.pushTags(ctx, p.TenantID, p.CustomerID)
}

// pushTags writes the customer's managed tags to their helpdesk user and unresolved tickets. Each
// target gets the wanted tags added and every other managed tag removed in one call; agents' own tags
// are never named, so never touched. What was written is recorded target by target, so a retry after a
// rate limit resumes where it stopped.
func (h *Handlers) pushTags(ctx context.Context, tenantID string, customerID int64) error {
	// Two pushes for one customer at once could interleave their add and remove calls and leave
	// Zendesk with neither's tags while the store records one of them: one at a time.
	held, release, ok, err := h.locks.hold(ctx, "push:"+tenantID+":"+strconv.FormatInt(customerID, 10), workLeaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return &delayedError{delay: time.Second, err: errors.New("another tag push for this customer is running")}
	}
	defer release()
	return leaseLost(held, h.pushTagsHeld(held, tenantID, customerID))
}

// pushTagsHeld is pushTags once the customer's push lease is held.
func (h *Handlers) pushTagsHeld(ctx context.Context, tenantID string, customerID int64) error {
	plan, err := h.store.TagPlan(ctx, tenantID, customerID)
	if err != nil {
		return err
	}
	if len(plan.Targets) == 0 {
		return nil
	}
	hd, err := h.helpdeskFor(ctx, tenantID)
	if errors.Is(err, ErrNoHelpdesk) {
		h.log.DebugContext(ctx, "tags not pushed: no Zendesk API credentials", "tenant", tenantID, "customer", customerID)
		return nil
	}
	if err != nil {
		return err
	}
	tenant, err := h.tenants.get(ctx, h.store, tenantID)
	if err != nil {
		return err
	}
	settings, err := ParseSettings(tenant.Settings)
	if err != nil {
		return fmt.Errorf("tenant %s settings: %v: %w", tenantID, err, asynq.SkipRetry)
	}
	desired := plan.Desired
	// Remove every tag clvd may write under the current prefix, and whatever it wrote before (under
	// an earlier prefix, say), except the wanted ones. Agents' own tags are never named.
	managed := settings.AllManagedTags()
	for _, t := range plan.Targets {
		managed = append(managed, t.Pushed...)
	}
	remove := without(managed, desired)

	var tickets []string
	for _, target := range plan.Targets {
		switch target.Kind {
		case "user":
			if target.FieldsDiffer {
				if err := h.pushUserFields(ctx, hd, tenantID, customerID, target.ID, plan.DesiredFields); err != nil {
					return err
				}
			}
			if !target.TagsDiffer {
				continue
			}
			if err := h.pushUserTags(ctx, hd, tenantID, customerID, target, desired, remove); err != nil {
				return err
			}
		case "ticket":
			tickets = append(tickets, target.ID)
		}
	}
	// Zendesk documents additional_tags/remove_tags (add and remove without replacing the agents' tags)
	// for its bulk update, which takes up to 100 tickets: one call covers all of a customer's tickets.
	// Closed tickets refuse updates, so they were left out by TagPlan; one closed meanwhile fails inside
	// Zendesk's job without affecting the others.
	for len(tickets) > 0 {
		n := min(len(tickets), zendesk.MaxBulkTickets)
		chunk := tickets[:n]
		tickets = tickets[n:]
		if _, err := hd.UpdateManyTicketTags(ctx, chunk, desired, remove); err != nil {
			return classify(fmt.Errorf("tagging Zendesk tickets %s: %w", strings.Join(chunk, ","), err))
		}
		for _, id := range chunk {
			if err := h.markPushed(ctx, tenantID, customerID, "ticket", id, desired); err != nil {
				return err
			}
		}
	}
	return nil
}

// pushUserTags writes the customer's managed tags to their helpdesk user: desired added, remove
// removed. Zendesk does that in two calls. Once the add is done the user carries what was there and
// the wanted tags: recorded as such, a failed removal is retried even if the score goes back to the
// tags last written.
func (h *Handlers) pushUserTags(ctx context.Context, hd Helpdesk, tenantID string, customerID int64, target store.TagTarget, desired, remove []string) error {
	write := func(add, remove []string) error {
		err := hd.UpdateUserTags(ctx, target.ID, add, remove)
		if err != nil && !errors.Is(err, zendesk.ErrNotFound) {
			return classify(fmt.Errorf("tagging Zendesk user %s: %w", target.ID, err))
		}
		return err
	}
	err := write(desired, nil)
	if err == nil && len(remove) > 0 && !sameSet(target.Pushed, desired) {
		if err := h.store.MarkTagsPushed(ctx, tenantID, customerID, "user", target.ID, union(target.Pushed, desired)); err != nil {
			return err
		}
	}
	if err == nil {
		err = write(nil, remove)
	}
	if errors.Is(err, zendesk.ErrNotFound) {
		// Nothing can carry these tags any more; recording them stops the reconciler from trying
		// again every minute.
		h.log.WarnContext(ctx, "Zendesk user no longer exists; tags not written", "tenant", tenantID, "user", target.ID)
		return h.store.MarkTagsPushed(ctx, tenantID, customerID, "user", target.ID, desired)
	}
	if err != nil {
		return err
	}
	return h.markPushed(ctx, tenantID, customerID, "user", target.ID, desired)
}

// pushUserFields writes the customer's user fields (clv_predicted, ...) to their helpdesk user.
func (h *Handlers) pushUserFields(ctx context.Context, hd Helpdesk, tenantID string, customerID int64, userID string, fields map[string]any) error {
	if err := hd.SetUserFields(ctx, userID, fields); err != nil {
		if errors.Is(err, zendesk.ErrNotFound) {
			h.log.WarnContext(ctx, "Zendesk user no longer exists; user fields not written", "tenant", tenantID, "user", userID)
		} else {
			return classify(fmt.Errorf("writing user fields of Zendesk user %s: %w", userID, err))
		}
	}
	return h.store.MarkUserFieldsPushed(ctx, tenantID, customerID, userID, fields)
}

func (h *Handlers) markPushed(ctx context.Context, tenantID string, customerID int64, kind, id string, tags []string) error {
	if err := h.store.MarkTagsPushed(ctx, tenantID, customerID, kind, id, tags); err != nil {
		return err
	}
	if h.Observer != nil {
		h.Observer.TagsPushed(tenantID, customerID, kind, id, tags)
	}
	return nil
}

func (h *Handlers) helpdeskFor(ctx context.Context, tenantID string) (Helpdesk, error) {
	t, err := h.tenants.get(ctx, h.store, tenantID)
	if err != nil {
		return nil, err
	}
	return h.helpdeskClient(t)
}

// helpdeskClient returns the tenant's helpdesk client behind the shared breaker (see breaker).
func (h *Handlers) helpdeskClient(t *store.Tenant) (Helpdesk, error) {
	hd, err := h.helpdesk(t)
	if err != nil || h.breaker == nil {
		return hd, err
	}
	probeFor := h.HelpdeskTimeout
	if probeFor <= 0 {
		probeFor = 30 * time.Second
	}
	return guardedHelpdesk{Helpdesk: hd, tenantID: t.ID, b: h.breaker, probeFor: probeFor + 5*time.Second}, nil
}

func (h *Handlers) handleReconcile(ctx context.Context, _ *asynq.Task) error {
	return h.Reconcile(ctx)
}

// Reconcile finds work the queue lost (a Redis without persistence restarted, a task archived after
// its retries) and queues it again: customers whose data changed after their last score, and customers
// whose helpdesk tags are not what the store says they should be.
func (h *Handlers) Reconcile(ctx context.Context) error {
	// Every worker process schedules the reconciler; one run per period is enough. The lease is not
	// released: it expires just before the next period.
	if _, ok, err := h.locks.acquire(ctx, "reconcile", h.reconcileLease); err != nil || !ok {
		return err
	}
	limit := h.reconcileBatch
	if limit <= 0 {
		limit = 5000
	}
	stale, err := h.store.StaleScores(ctx, h.now().Add(-30*time.Second), limit)
	if err != nil {
		return err
	}
	for _, ref := range stale {
		if err := h.queue.EnqueueRescore(ctx, ref.TenantID, ref.CustomerID); err != nil {
			return err
		}
	}
	unsynced, err := h.store.UnsyncedTags(ctx, h.unsyncedCursor(ctx), limit)
	if err != nil {
		return err
	}
	pushes := 0
	for _, ref := range unsynced {
		if _, err := h.helpdeskFor(ctx, ref.TenantID); err != nil {
			continue // no credentials (or no tenant): a push could only do nothing
		}
		if err := h.queue.EnqueuePush(ctx, ref.TenantID, ref.CustomerID); err != nil {
			return err // the cursor stays: the next run reads this page again
		}
		pushes++
	}
	next := int64(0) // the end: the next run starts over
	if len(unsynced) == limit {
		next = unsynced[len(unsynced)-1].CustomerID
	}
	h.setUnsyncedCursor(ctx, next)
	refits, err := h.requestedRefits(ctx)
	if err != nil {
		return err
	}
	pending, err := h.store.PendingOutreach(ctx, h.now().Add(-outreachResumeAfter), limit)
	if err != nil {
		return err
	}
	for _, o := range pending {
		if err := h.queue.enqueueOutreachResume(ctx, o); err != nil {
			return err
		}
	}
	if len(stale)+pushes+refits+len(pending) > 0 {
		h.log.InfoContext(ctx, "reconciler queued work", "rescores", len(stale), "pushes", pushes, "refits", refits, "outreach", len(pending))
	}
	return nil
}

// unsyncedCursorKey holds, in Redis, where the next reconciler run's scan for unsynced tags starts:
// shared, because the run goes to whichever worker process takes the reconcile lease.
const unsyncedCursorKey = "clvd:reconcile:unsynced_after"

// unsyncedCursor returns where this run's scan starts: the shared cursor, else (no Redis, or Redis
// lost it) this process's own. Losing it only starts the scan over.
func (h *Handlers) unsyncedCursor(ctx context.Context) int64 {
	if h.locks != nil && h.locks.rc != nil {
		if after, err := h.locks.rc.Get(ctx, unsyncedCursorKey).Int64(); err == nil {
			return after
		}
	}
	return h.unsyncedAfter.Load()
}

func (h *Handlers) setUnsyncedCursor(ctx context.Context, after int64) {
	h.unsyncedAfter.Store(after)
	if h.locks != nil && h.locks.rc != nil {
		if err := h.locks.rc.Set(ctx, unsyncedCursorKey, after, 0).Err(); err != nil {
			h.log.WarnContext(ctx, "reconciler cursor not saved; this process keeps its own", "error", err)
		}
	}
}

// refitRequestedKey is the tenant state that asks for a refit (written by `clvd import`, which may run
// without access to the service's queue): the reconciler queues one when it is newer than the model.
const refitRequestedKey = "refit_requested"

// RequestRefit records in the store that a tenant's model should be refitted soon.
func RequestRefit(ctx context.Context, st interface {
	PutTenantState(ctx context.Context, tenantID, key string, value json.RawMessage) error
}, tenantID, reason string) error {
	raw, _ := json.Marshal(map[string]string{"reason": reason})
	return st.PutTenantState(ctx, tenantID, refitRequestedKey, raw)
}

func (h *Handlers) requestedRefits(ctx context.Context) (int, error) {
	tenants, err := h.store.ListTenants(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tenants {
		_, at, err := h.store.GetTenantState(ctx, t.ID, refitRequestedKey)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		m, err := h.store.LatestModel(ctx, t.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		if m != nil && !m.FittedAt.Before(at) {
			continue
		}
		dup, err := h.queue.EnqueueRefit(ctx, t.ID, "requested:"+at.UTC().Format(time.RFC3339Nano), "requested")
		if err != nil {
			return n, err
		}
		if !dup {
			n++
		}
	}
	return n, nil
}

// union returns the elements of a and b, sorted, once each.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// sameSet reports whether a and b hold the same elements.
func sameSet(a, b []string) bool { return slices.Equal(union(a, nil), union(b, nil)) }

// without returns the elements of all not in keep, sorted.
func without(all, keep []string) []string {
	k := make(map[string]bool, len(keep))
	for _, s := range keep {
		k[s] = true
	}
	var out []string
	for _, s := range all {
		if !k[s] {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// tenantCache keeps tenants (with decrypted credentials) for a short while: every task needs one.
type tenantCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]tenantEntry
}

type tenantEntry struct {
	t  *store.Tenant
	at time.Time
}

func (c *tenantCache) get(ctx context.Context, st Store, id string) (*store.Tenant, error) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.t, nil
	}
	t, err := st.GetTenant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tenant %s: %w: %w", id, err, asynq.SkipRetry)
	}
	if err != nil {
		return nil, err
	}
	c.put(t)
	return t, nil
}

func (c *tenantCache) put(t *store.Tenant) {
	c.mu.Lock()
	c.entries[t.ID] = tenantEntry{t: t, at: time.Now()}
	c.mu.Unlock()
}
