package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/store"
)

// Kinds of stored model records.
const (
	modelKindBGNBD     = "bgnbd+gammagamma"
	modelKindHeuristic = "heuristic"
	modelKindFailed    = "failed"
	rescoreBatchSize   = 500
	streamBatchSize    = 1000
)

func (h *Handlers) handleRefitAll(ctx context.Context, _ *asynq.Task) error {
	tenants, err := h.store.ListTenants(ctx)
	if err != nil {
		return err
	}
	day := h.now().UTC().Format("2006-01-02")
	for _, t := range tenants {
		if _, err := h.queue.EnqueueRefit(ctx, t.ID, "daily:"+day, "schedule"); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handlers) handleRefit(ctx context.Context, t *asynq.Task) error {
	var p tenantPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	return h.Refit(ctx, p.TenantID, p.Reason)
}

// Refit fits the tenant's BG/NBD and Gamma-Gamma models on every customer's orders, stores the
// parameters and fit quality, rebuilds the population that tiers and segments rank against, and
// starts a rescore of every customer in batches. Below the cold-start thresholds no model is fitted
// and scores stay heuristic; a fit that does not converge is recorded and the previous model stays.
func (h *Handlers) Refit(ctx context.Context, tenantID, reason string) error {
	// Read fresh, not from the cache: a refit requested by a settings change must use the new settings.
	tenant, err := h.store.GetTenant(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tenant %s: %w: %w", tenantID, err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	h.tenants.put(tenant)
	settings, err := ParseSettings(tenant.Settings)
	if err != nil {
		return fmt.Errorf("tenant %s settings: %v: %w", tenantID, err, asynq.SkipRetry)
	}
	unit := settings.Unit()
	now := h.now()

	var summaries []clv.Summary
	err = h.store.ForEachCustomerOrders(ctx, tenantID, streamBatchSize, func(_ int64, orders []store.OrderRecord) error {
		purchases, _, _ := purchasesOf(orders, settings.Currency)
		if s, ok := clv.Summarize(purchases, now, unit); ok {
			summaries = append(summaries, s)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading orders of tenant %s: %w", tenantID, err)
	}

	started := time.Now()
	model, report, fitErr := clv.Fit(summaries, unit, clv.FitOptions{})
	rec := &store.ModelRecord{TenantID: tenantID, FittedAt: now.UTC(), Customers: len(summaries), Seconds: time.Since(started).Seconds()}
	quality := map[string]any{"reason": reason, "report": report}
	var use *clv.Model
	switch {
	case fitErr == nil:
		rec.Kind = modelKindBGNBD
		rec.Params, _ = json.Marshal(model)
		rec.RepeatCustomers = model.RepeatCustomers
		rec.LogLik = model.LogLik
		rec.Converged = true
		use = model
	case errors.Is(fitErr, clv.ErrNotEnoughData):
		rec.Kind = modelKindHeuristic
		rec.Params = json.RawMessage(`{}`)
		quality["note"] = fitErr.Error()
	default:
		rec.Kind = modelKindFailed
		rec.Params = json.RawMessage(`{}`)
		quality["error"] = fitErr.Error()
	}
	if rec.Quality, err = json.Marshal(quality); err != nil { // e.g. a NaN in a failed fit's report
		rec.Quality, _ = json.Marshal(map[string]string{"reason": reason, "error": fmt.Sprint(fitErr), "report_not_encodable": err.Error()})
	}
	if err := h.store.SaveModel(ctx, rec); err != nil {
		return err
	}
	if rec.Kind == modelKindFailed {
		h.log.ErrorContext(ctx, "model fit failed; previous model kept", "tenant", tenantID, "customers", len(summaries), "error", fitErr)
		prev, err := h.models.get(ctx, h.store, tenantID)
		if err != nil {
			return err
		}
		use = prev.model
	} else {
		h.log.InfoContext(ctx, "model fitted", "tenant", tenantID, "kind", rec.Kind, "customers", len(summaries),
			"repeat_customers", rec.RepeatCustomers, "seconds", rec.Seconds)
	}
	summaries = nil

	// The population is built from everyone's scores under the model just fitted.
	cfg := settings.Scoring
	pb := clv.NewPopulationBuilder()
	err = h.store.ForEachCustomerOrders(ctx, tenantID, streamBatchSize, func(_ int64, orders []store.OrderRecord) error {
		purchases, _, _ := purchasesOf(orders, settings.Currency)
		pb.Add(clv.ScoreCustomer(purchases, clv.SupportSignals{}, use, cfg, now))
		return nil
	})
	if err != nil {
		return fmt.Errorf("scoring tenant %s for its population: %w", tenantID, err)
	}
	pop := pb.Build(cfg)
	raw, err := json.Marshal(pop)
	if err != nil {
		return err
	}
	if err := h.store.PutTenantState(ctx, tenantID, populationKey, raw); err != nil {
		return err
	}
	if err := h.armOutreach(ctx, tenantID); err != nil {
		return err
	}
	h.models.invalidate(tenantID)
	modelID := rec.ID
	if rec.Kind == modelKindFailed {
		modelID = 0 // batches use whatever usable model is newest
	}
	return h.queue.enqueueRescoreBatch(ctx, rescoreBatchPayload{TenantID: tenantID, RunID: strconv.FormatInt(now.UnixNano(), 36), ModelID: modelID})
}

// handleRescoreBatch rescores one batch of a tenant's customers and queues the next batch, so a
// rescore of every customer keeps memory flat, survives restarts (each batch is its own task) and
// pushes only the tags that changed.
func (h *Handlers) handleRescoreBatch(ctx context.Context, t *asynq.Task) error {
	var p rescoreBatchPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	ids, err := h.store.CustomerIDs(ctx, p.TenantID, p.AfterID, rescoreBatchSize)
	if err != nil {
		return err
	}
	// A worker whose cache still holds the previous model must not score this batch with it.
	if p.ModelID != 0 {
		if sc, err := h.models.get(ctx, h.store, p.TenantID); err != nil {
			return err
		} else if sc.modelID != p.ModelID {
			h.models.invalidate(p.TenantID)
		}
	}
	for _, id := range ids {
		if err := h.rescore(ctx, p.TenantID, id); err != nil {
			if errors.Is(err, asynq.SkipRetry) { // this customer can never be scored: the others still must be
				h.log.ErrorContext(ctx, "customer skipped in rescore batch", "tenant", p.TenantID, "customer", id, "error", err)
				continue
			}
			return fmt.Errorf("rescoring customer %d: %w", id, err)
		}
	}
	if len(ids) == rescoreBatchSize {
		p.AfterID = ids[len(ids)-1]
		return h.queue.enqueueRescoreBatch(ctx, p)
	}
	return nil
}
