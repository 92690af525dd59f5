package worker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/store"
)

func TestSettingsOverridesAndRoundTrip(t *testing.T) {
	s, err := ParseSettings([]byte(`{"tag_prefix":"ltv_","horizon_days":730,"margin":0.3,"tiers":{"platinum_share":0.01},"churn":{"high_threshold":0.8}}`))
	if err != nil {
		t.Fatal(err)
	}
	def := clv.DefaultConfig()
	c := s.Scoring
	if c.Horizon != 730*24*time.Hour || c.Margin != 0.3 || c.Tiers.PlatinumShare != 0.01 || c.Churn.HighThreshold != 0.8 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.Tiers.GoldShare != def.Tiers.GoldShare || c.Churn.MediumThreshold != def.Churn.MediumThreshold || c.AnnualDiscountRate != def.AnnualDiscountRate {
		t.Fatalf("fields left out must keep their defaults: %+v", c)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSettings(raw)
	if err != nil {
		t.Fatalf("the effective settings do not parse back: %v\n%s", err, raw)
	}
	if back.Scoring != s.Scoring || back.TagPrefix != s.TagPrefix || back.Period != s.Period {
		t.Fatalf("round trip changed the settings:\n%+v\n%+v", s, back)
	}
}

func TestSettingsRefused(t *testing.T) {
	for body, want := range map[string]string{
		`{"margin":2}`: "margin",
		`{"churn":{"medium_threshold":0.7,"high_threshold":0.5}}`: "thresholds",
		`{"tiers":{"platinum_share":0.5,"gold_share":0.5}}`:       "tier shares",
		`{"colour":"red"}`:                  "colour",
		`{"churn":{"open_tickt_weight":1}}`: "open_tickt_weight",
		`{"horizon_days":-1}`:               "horizon_days",
		`{"tag_prefix":""}`:                 "tag_prefix",
	} {
		_, err := ParseSettings([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("settings %s: error %v, want one naming %q", body, err, want)
		}
	}
}

// TestScoringUsesSettings: a tenant's churn thresholds decide the band its customers get.
func TestScoringUsesSettings(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	orders := []store.OrderRecord{{CreatedAt: now.AddDate(0, 0, -400), Currency: "USD", NetMinor: 5000, Status: integrations.OrderPaid}}
	tickets := []store.Ticket{{Status: "open", Priority: "urgent", CreatedAt: now.AddDate(0, 0, -1)}}
	def, _ := ParseSettings(nil)
	strict, err := ParseSettings([]byte(`{"churn":{"medium_threshold":0.98,"high_threshold":0.99}}`))
	if err != nil {
		t.Fatal(err)
	}
	a := computeScore(orders, tickets, scoring{}, def, now)
	b := computeScore(orders, tickets, scoring{}, strict, now)
	if a.ChurnProbability != b.ChurnProbability {
		t.Fatalf("thresholds must not change the probability: %v vs %v", a.ChurnProbability, b.ChurnProbability)
	}
	if a.ChurnBand != "high" || b.ChurnBand == "high" {
		t.Fatalf("bands: default %s, strict thresholds %s (probability %.3f)", a.ChurnBand, b.ChurnBand, a.ChurnProbability)
	}
}
