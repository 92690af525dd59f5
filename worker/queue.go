// Package worker holds clvd's asynq task types, their handlers (ingest, rescore, push tags, refit,
// reconcile) and the scheduler. Handlers are idempotent: the store is the system of record, the queue
// only carries work, and anything the queue loses is found again from the store by the reconciler.
package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/logctx"
)

// Task types.
const (
	TypeIngestOrder   = "ingest:order"
	TypeIngestTicket  = "ingest:ticket"
	TypeRescore       = "customer:rescore"
	TypePushTags      = "customer:push_tags"
	TypeRefit         = "tenant:refit"
	TypeRescoreBatch  = "tenant:rescore_batch"
	TypeRefitAll      = "maintenance:refit_all"
	TypeReconcile     = "maintenance:reconcile"
	queueIngest       = "ingest"
	queueScore        = "score"
	queuePush         = "push"
	queueMaintenance  = "maintenance"
	ingestMaxRetry    = 25
	customerMaxRetry  = 25
	debounceMargin    = 200 * time.Millisecond // covers clock skew between the processes that enqueue and run a rescore
	maintenanceMaxTry = 5
)

// Queues are the asynq queues and their priorities: intake first, so a backlog of rescores or
// pushes never slows the acknowledgement of new events' processing.
var Queues = map[string]int{queueIngest: 6, queueScore: 3, queuePush: 3, queueMaintenance: 1}

type orderPayload struct {
	TenantID   string                  `json:"tenant_id"`
	Event      integrations.OrderEvent `json:"event"`
	ReceivedAt time.Time               `json:"received_at"`
	RequestID  string                  `json:"request_id,omitempty"` // the webhook request's, for the logs
}

type ticketPayload struct {
	TenantID   string                   `json:"tenant_id"`
	Event      integrations.TicketEvent `json:"event"`
	ReceivedAt time.Time                `json:"received_at"`
	RequestID  string                   `json:"request_id,omitempty"`
}

type customerPayload struct {
	TenantID   string `json:"tenant_id"`
	CustomerID int64  `json:"customer_id"`
}

type tenantPayload struct {
	TenantID string `json:"tenant_id"`
	Reason   string `json:"reason,omitempty"`
}

type rescoreBatchPayload struct {
	TenantID string `json:"tenant_id"`
	RunID    string `json:"run_id"`
	AfterID  int64  `json:"after_id"`
	ModelID  int64  `json:"model_id"` // the model the batch must score with: a worker caching another reloads
}

// Queue enqueues clvd's tasks. It is safe for concurrent use.
type Queue struct {
	client    *asynq.Client
	inspector *asynq.Inspector // optional: revives archived tasks whose id is delivered again
	debounce  time.Duration
	now       func() time.Time
}

// NewQueue wraps an asynq client. debounce is the rescore coalescing window (0: no coalescing).
func NewQueue(client *asynq.Client, debounce time.Duration) *Queue {
	return &Queue{client: client, debounce: debounce, now: time.Now}
}

// NewQueueFromRedis is NewQueue on a Redis connection, with the inspector that lets a re-delivery
// revive an archived task (see enqueue).
func NewQueueFromRedis(rc redis.UniversalClient, debounce time.Duration) *Queue {
	q := NewQueue(asynq.NewClientFromRedisClient(rc), debounce)
	q.inspector = asynq.NewInspectorFromRedisClient(rc)
	return q
}

// taskID makes a short, stable asynq task id from its parts, so a re-delivered event maps to the same id.
func taskID(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// enqueue reports duplicate=true when a task with the same id is already queued, running, retrying
// or kept as completed: asynq returns ErrTaskIDConflict wrapped, so it is matched with errors.Is. A
// task that used up its retries is archived under its id; the same delivery coming again (the sender
// retrying, hours later) must not be swallowed as a duplicate, so that task is run again instead.
func (q *Queue) enqueue(ctx context.Context, typ, queue, id string, payload any, opts ...asynq.Option) (duplicate bool, err error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return false, fmt.Errorf("encoding %s task: %w", typ, err)
	}
	opts = append(opts, asynq.Queue(queue))
	if id != "" {
		opts = append(opts, asynq.TaskID(id))
	}
	_, err = q.client.EnqueueContext(ctx, asynq.NewTask(typ, body), opts...)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, asynq.ErrTaskIDConflict):
		if q.inspector != nil {
			info, ierr := q.inspector.GetTaskInfo(queue, id)
			if ierr == nil && info.State == asynq.TaskStateArchived {
				if rerr := q.inspector.RunTask(queue, id); rerr != nil {
					return false, fmt.Errorf("reviving archived %s task %s: %w", typ, id, rerr)
				}
				return false, nil
			}
		}
		return true, nil
	case errors.Is(err, asynq.ErrDuplicateTask):
		return true, nil
	default:
		return false, fmt.Errorf("enqueueing %s: %w", typ, err)
	}
}

// EnqueueOrder queues an order event for ingestion. A re-delivery while the first is still queued is
// reported as a duplicate; one that comes later is ingested again and changes nothing (the store upsert
// is idempotent), so the answer to the sender is the same either way.
func (q *Queue) EnqueueOrder(ctx context.Context, tenantID string, ev integrations.OrderEvent) (duplicate bool, err error) {
	key := ev.EventID
	if key == "" && ev.Order != nil {
		o := ev.Order
		key = fmt.Sprintf("%s|%s|%d|%s|%d", o.Source, o.OrderID, o.UpdatedAt.UnixNano(), o.Status, o.TotalMinor)
		for _, r := range ev.Refunds {
			key += "|" + r.RefundID
		}
	} else if key == "" {
		for _, r := range ev.Refunds {
			key += r.Source + "|" + r.RefundID + "|"
		}
	}
	id := taskID("order", tenantID, ev.Topic, key)
	return q.enqueue(ctx, TypeIngestOrder, queueIngest, id, orderPayload{TenantID: tenantID, Event: ev, ReceivedAt: q.now().UTC(), RequestID: logctx.RequestID(ctx)},
		asynq.MaxRetry(ingestMaxRetry))
}

// EnqueueTicket queues a ticket event for ingestion, deduplicated by its event id.
func (q *Queue) EnqueueTicket(ctx context.Context, tenantID string, ev integrations.TicketEvent) (duplicate bool, err error) {
	id := taskID("ticket", tenantID, ev.Source, ev.EventID)
	return q.enqueue(ctx, TypeIngestTicket, queueIngest, id, ticketPayload{TenantID: tenantID, Event: ev, ReceivedAt: q.now().UTC(), RequestID: logctx.RequestID(ctx)},
		asynq.MaxRetry(ingestMaxRetry))
}

// EnqueueRescore schedules a rescore of one customer, coalescing a burst into one task: every request
// in the same debounce window shares a task id and runs once, just after the window closes. Because the
// task runs only after its window ends, it always sees the data stored by every request of its window;
// a request after that falls into the next window and gets a task of its own.
func (q *Queue) EnqueueRescore(ctx context.Context, tenantID string, customerID int64) error {
	p := customerPayload{TenantID: tenantID, CustomerID: customerID}
	opts := []asynq.Option{asynq.MaxRetry(customerMaxRetry)}
	id := ""
	if q.debounce > 0 {
		now := q.now()
		window, runAt := rescoreWindow(now, q.debounce)
		id = taskID("rescore", tenantID, strconv.FormatInt(customerID, 10), strconv.FormatInt(window.UnixNano(), 10))
		opts = append(opts, asynq.ProcessIn(runAt.Sub(now)))
	}
	_, err := q.enqueue(ctx, TypeRescore, queueScore, id, p, opts...)
	return err
}

// enqueueRescoreOfVersion queues a rescore for data newer than version, whatever debounce window
// it falls in: the id names the version, so it cannot be mistaken for the rescore that is running.
func (q *Queue) enqueueRescoreOfVersion(ctx context.Context, tenantID string, customerID, version int64) error {
	p := customerPayload{TenantID: tenantID, CustomerID: customerID}
	_, err := q.enqueue(ctx, TypeRescore, queueScore, taskID("rescore-after", tenantID, strconv.FormatInt(customerID, 10),
		strconv.FormatInt(version, 10)), p, asynq.MaxRetry(customerMaxRetry), asynq.ProcessIn(q.debounce))
	return err
}

// rescoreWindow returns the debounce window now falls in and when its rescore runs: after the window
// and the clock-skew margin, rounded up to a whole second, because asynq keeps scheduled times in
// whole seconds (truncated) and may run a task up to a second early. Rounded up, the task never
// starts inside its own window, where a later event of the window would find it running and be
// taken for a duplicate. Windows are shifted back by the margin, so that with a debounce of whole
// seconds a window's end plus the margin is a whole second and the rounding adds nothing (it used to
// add 0.8 s to every rescore with the default 1 s debounce).
func rescoreWindow(now time.Time, debounce time.Duration) (window, runAt time.Time) {
	window = now.Add(debounceMargin).Truncate(debounce).Add(-debounceMargin)
	return window, ceilSecond(window.Add(debounce + debounceMargin))
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); !s.Equal(t) {
		return s.Add(time.Second)
	}
	return t
}

// EnqueuePush queues a tag push for one customer. Pushes carry no id: each one reads the wanted and
// the written tags from the store when it runs, so extra pushes cost a read and no helpdesk call, while
// a missed one would leave tags stale until the reconciler.
func (q *Queue) EnqueuePush(ctx context.Context, tenantID string, customerID int64) error {
	_, err := q.enqueue(ctx, TypePushTags, queuePush, "", customerPayload{TenantID: tenantID, CustomerID: customerID},
		asynq.MaxRetry(customerMaxRetry))
	return err
}

// EnqueueRefit queues a model refit of one tenant. key makes it unique (e.g. the day for the schedule,
// or an import's id), so many schedulers or a repeated import still cause one refit.
func (q *Queue) EnqueueRefit(ctx context.Context, tenantID, key, reason string) (duplicate bool, err error) {
	return q.enqueue(ctx, TypeRefit, queueMaintenance, taskID("refit", tenantID, key), tenantPayload{TenantID: tenantID, Reason: reason},
		asynq.MaxRetry(maintenanceMaxTry), asynq.Timeout(2*time.Hour), asynq.Retention(24*time.Hour))
}

func (q *Queue) enqueueRescoreBatch(ctx context.Context, p rescoreBatchPayload) error {
	_, err := q.enqueue(ctx, TypeRescoreBatch, queueMaintenance, taskID("rescore-batch", p.TenantID, p.RunID, strconv.FormatInt(p.AfterID, 10)), p,
		asynq.MaxRetry(maintenanceMaxTry), asynq.Timeout(30*time.Minute))
	return err
}
