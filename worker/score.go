package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
)

// populationKey is the tenant state under which the population (tier and RFM cut-points) is kept.
const populationKey = "population"

// scoring is what a tenant's customers are scored with: the fitted model (nil: heuristics) and the
// population they are ranked against (nil: none built yet).
type scoring struct {
	model      *clv.Model
	modelID    int64 // the stored record it came from (0: none)
	population *clv.Population
	// outreachArmedAt is when the tenant's first population was built (zero: not yet): score
	// changes from scores older than that never trigger outreach (see maybeOutreach).
	outreachArmedAt time.Time
}

// purchasesOf turns stored orders into the model's purchases: cancelled and fully refunded orders are
// not purchases; the rest count with their net value. Amounts are in the tenant's currency when it
// set one, else in the customer's main currency (the one most of their orders use); orders in other
// currencies still count as purchases but add no value, because clvd does not convert currencies.
func purchasesOf(orders []store.OrderRecord, tenantCurrency string) (purchases []clv.Purchase, currency string, historicMinor int64) {
	currency = tenantCurrency
	counts := map[string]int{}
	if currency != "" {
		counts = nil // the tenant's currency decides
	}
	for _, o := range orders {
		if o.Status != integrations.OrderCancelled && o.Status != integrations.OrderRefunded {
			counts[o.Currency]++
		}
	}
	for c, n := range counts {
		if n > counts[currency] || (n == counts[currency] && c < currency) {
			currency = c
		}
	}
	for _, o := range orders {
		if o.Status == integrations.OrderCancelled || o.Status == integrations.OrderRefunded {
			continue
		}
		amount := 0.0
		if o.Currency == currency {
			amount = money.ToMajor(o.NetMinor, o.Currency)
			historicMinor += o.NetMinor
		}
		purchases = append(purchases, clv.Purchase{Time: o.CreatedAt, Amount: amount})
	}
	return purchases, currency, historicMinor
}

// signalsOf counts the support signals of a customer's tickets; a ticket created within recent
// counts as recent.
func signalsOf(tickets []store.Ticket, now time.Time, recent time.Duration) clv.SupportSignals {
	var s clv.SupportSignals
	for _, t := range tickets {
		open := !integrations.TicketResolved(t.Status)
		if open {
			s.OpenTickets++
			if t.Priority == "urgent" {
				s.UrgentOpen++
			}
		}
		created := t.CreatedAt
		if created.IsZero() {
			created = t.UpdatedAt
		}
		if now.Sub(created) <= recent {
			s.RecentTickets++
		}
		if t.Satisfaction == "bad" {
			s.BadRatings++
		}
	}
	return s
}

// computeScore scores one customer from their stored orders and tickets.
func computeScore(orders []store.OrderRecord, tickets []store.Ticket, sc scoring, settings Settings, now time.Time) store.Score {
	purchases, currency, historic := purchasesOf(orders, settings.Currency)
	cfg := settings.Scoring
	s := clv.ScoreCustomer(purchases, signalsOf(tickets, now, settings.RecentTicketWindow()), sc.model, cfg, now)
	var pop clv.Population
	if sc.population != nil {
		pop = *sc.population
	}
	tier := pop.Tier(s, cfg, now)
	out := store.Score{
		Model:             s.Model,
		Currency:          currency,
		HistoricMinor:     historic,
		SimpleCLV:         s.SimpleCLV,
		PredictedCLV:      s.PredictedCLV,
		PAlive:            s.PAlive,
		ChurnProbability:  s.Churn.Probability,
		ChurnBand:         s.Churn.Band,
		ChurnReasons:      s.Churn.Reasons,
		Tier:              tier,
		Segment:           pop.Segment(s, now),
		ExpectedPurchases: s.ExpectedPurchases,
		Orders:            len(purchases),
		ScoredAt:          now.UTC(),
	}
	out.Tags = settings.ManagedTags(tier, s.Churn.Band, out.Segment)
	if !s.ExpectedNextOrder.IsZero() {
		t := s.ExpectedNextOrder.UTC()
		out.ExpectedNextOrder = &t
	}
	if len(purchases) > 0 {
		t := purchases[len(purchases)-1].Time.UTC()
		out.LastOrder = &t
	}
	out.UserFields = userFields(out, settings.UserFields)
	return out
}

// userFields are the helpdesk user field values of a score, for the keys the tenant writes. Values
// are rounded to what an agent reads (whole currency units for the prediction, cents for the
// exact spend, two decimals for the probability, the day of the next order), so a daily rescore
// that moves a prediction by a cent does not rewrite every user.
func userFields(s store.Score, keys []string) map[string]any {
	if len(keys) == 0 {
		return nil
	}
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		switch k {
		case FieldPredicted:
			out[k] = math.Round(s.PredictedCLV)
		case FieldHistoric:
			out[k] = money.ToMajor(s.HistoricMinor, s.Currency)
		case FieldChurnProbability:
			out[k] = math.Round(100*s.ChurnProbability) / 100
		case FieldExpectedNextOrder:
			if s.ExpectedNextOrder != nil {
				out[k] = s.ExpectedNextOrder.UTC().Format("2006-01-02")
			} else {
				out[k] = nil
			}
		}
	}
	return out
}

// modelCache keeps each tenant's model and population for a short while: every rescore needs them,
// and they change once a day.
type modelCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]modelEntry
	// generation counts invalidations per tenant: a load that started before an invalidation must
	// not store what it read, or a refit's new population would be hidden behind the old one for a
	// whole TTL.
	generation map[string]uint64
}

type modelEntry struct {
	s  scoring
	at time.Time
}

func (c *modelCache) invalidate(tenantID string) {
	c.mu.Lock()
	delete(c.entries, tenantID)
	if c.generation == nil {
		c.generation = map[string]uint64{}
	}
	c.generation[tenantID]++
	c.mu.Unlock()
}

func (c *modelCache) get(ctx context.Context, st Store, tenantID string) (scoring, error) {
	c.mu.Lock()
	e, ok := c.entries[tenantID]
	gen := c.generation[tenantID]
	c.mu.Unlock()
	// A tenant without a population is about to get one (its bootstrap refit is queued), possibly in
	// another process whose invalidation never reaches this cache: read it fresh until it exists.
	if ok && e.s.population != nil && time.Since(e.at) < c.ttl {
		return e.s, nil
	}
	var sc scoring
	// The newest record that is not a failed fit decides: a fit that failed keeps the model before it.
	recs, err := st.ListModels(ctx, tenantID, 20)
	if err != nil {
		return sc, err
	}
	for _, rec := range recs {
		if rec.Kind == modelKindFailed {
			continue
		}
		sc.modelID = rec.ID
		if rec.Kind == modelKindBGNBD {
			var m clv.Model
			if err := json.Unmarshal(rec.Params, &m); err != nil {
				return sc, fmt.Errorf("tenant %s: stored model %d: %w", tenantID, rec.ID, err)
			}
			sc.model = &m
		}
		break
	}
	switch _, at, err := st.GetTenantState(ctx, tenantID, outreachArmedKey); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return sc, err
	default:
		sc.outreachArmedAt = at
	}
	raw, _, err := st.GetTenantState(ctx, tenantID, populationKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return sc, err
	default:
		var p clv.Population
		if err := json.Unmarshal(raw, &p); err != nil {
			return sc, fmt.Errorf("tenant %s: stored population: %w", tenantID, err)
		}
		sc.population = &p
	}
	c.mu.Lock()
	if c.generation[tenantID] == gen {
		c.entries[tenantID] = modelEntry{s: sc, at: time.Now()}
	}
	c.mu.Unlock()
	return sc, nil
}
