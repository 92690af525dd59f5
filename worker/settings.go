package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/internal/money"
)

// Settings are a tenant's preferences for scoring and tagging, stored as JSON on the tenant. Every
// field is optional; what is left out keeps its default, so an empty object is valid. Unknown fields
// are refused, so a typo is an error instead of a silently ignored setting.
//
//	{
//	  "tag_prefix": "clv_",                  // managed tags are <prefix>tier_<tier> and <prefix>churn_<band>
//	  "period": "week",                      // the model's time unit: week or day
//	  "horizon_days": 365,                   // predicted CLV covers this many days
//	  "annual_discount_rate": 0.10,
//	  "margin": 1,                           // share of revenue that is profit, in (0, 1]
//	  "expected_lifetime_years": 3,          // lifetime in the simple formula
//	  "tiers": {"platinum_share": 0.05, "gold_share": 0.15, "silver_share": 0.30, "new_customer_days": 30},
//	  "churn": {"open_ticket_weight": 0.4, "recent_ticket_weight": 0.2, "bad_rating_weight": 0.8,
//	            "urgent_weight": 0.6, "max_signal_count": 3, "recent_ticket_days": 30,
//	            "medium_threshold": 0.3, "high_threshold": 0.6, "overdue_factor": 2},
//	  "currency": "",                        // ISO 4217 code values are counted in; "" = each customer's main currency
//	  "write": {"tags": ["tier", "churn"],   // which managed tags to write: tier, churn, segment
//	            "user_fields": ["clv_predicted", "clv_historic", "clv_churn_probability", "clv_expected_next_order"]},
//	  "outreach": {...}                      // see OutreachSettings
//	}
type Settings struct {
	TagPrefix string
	Period    string
	// Scoring is the model configuration: clv's defaults with the tenant's overrides applied.
	Scoring clv.Config
	// Currency, when set, is the currency customer value is counted in: orders in other currencies
	// still count as purchases but add no value (clvd does not convert). Empty: each customer's main
	// currency (the one most of their orders use).
	Currency string
	// TagKinds are the managed tags written: "tier", "churn", "segment".
	TagKinds []string
	// UserFields are the helpdesk user fields written, by key (a subset of UserFieldKeys).
	UserFields []string
	Outreach   OutreachSettings
}

// Tag kinds and user field keys a tenant can choose to write.
const (
	TagKindTier    = "tier"
	TagKindChurn   = "churn"
	TagKindSegment = "segment"

	FieldPredicted         = "clv_predicted"
	FieldHistoric          = "clv_historic"
	FieldChurnProbability  = "clv_churn_probability"
	FieldExpectedNextOrder = "clv_expected_next_order"
)

var (
	tagKinds      = []string{TagKindTier, TagKindChurn, TagKindSegment}
	UserFieldKeys = []string{FieldPredicted, FieldHistoric, FieldChurnProbability, FieldExpectedNextOrder}
)

type writeJSON struct {
	Tags       *[]string `json:"tags"`
	UserFields *[]string `json:"user_fields"`
}

// settingsJSON is the stored form; pointers and raw objects tell "left out" from "zero".
type settingsJSON struct {
	TagPrefix             *string         `json:"tag_prefix"`
	Period                *string         `json:"period"`
	HorizonDays           *float64        `json:"horizon_days"`
	AnnualDiscountRate    *float64        `json:"annual_discount_rate"`
	Margin                *float64        `json:"margin"`
	ExpectedLifetimeYears *float64        `json:"expected_lifetime_years"`
	Tiers                 json.RawMessage `json:"tiers"`
	Churn                 json.RawMessage `json:"churn"`
	Currency              *string         `json:"currency"`
	Write                 json.RawMessage `json:"write"`
	Outreach              json.RawMessage `json:"outreach"`
}

// A prefix is required: without one, clvd would add and remove tags such as "tier_gold" that agents
// may use for their own purposes.
var tagPrefixPattern = regexp.MustCompile(`^[a-z0-9_]{1,20}$`)

// Tiers and churn bands a managed tag can name: every one is removed where it no longer applies.
var (
	tiers    = []string{"platinum", "gold", "silver", "bronze", "new"}
	bands    = []string{"low", "medium", "high"}
	segments = []string{"champions", "loyal", "potential_loyalist", "new", "at_risk", "cant_lose", "hibernating", "lost"}
)

// strictUnmarshal decodes raw into v, refusing unknown fields; fields not present keep v's values.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// ParseSettings reads a tenant's settings JSON, filling defaults and validating.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	s := Settings{TagPrefix: "clv_", Period: "week", Scoring: clv.DefaultConfig(),
		TagKinds: []string{TagKindTier, TagKindChurn}, UserFields: slices.Clone(UserFieldKeys), Outreach: DefaultOutreach()}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return s, nil
	}
	var in settingsJSON
	if err := strictUnmarshal(raw, &in); err != nil {
		return s, fmt.Errorf("settings: %v", err)
	}
	if in.TagPrefix != nil {
		s.TagPrefix = *in.TagPrefix
	}
	if !tagPrefixPattern.MatchString(s.TagPrefix) {
		return s, fmt.Errorf("settings: tag_prefix %q: want 1 to 20 of a-z, 0-9 and _", s.TagPrefix)
	}
	if in.Period != nil {
		s.Period = *in.Period
	}
	if _, err := clv.ParseUnit(s.Period); err != nil {
		return s, fmt.Errorf("settings: period: %v", err)
	}
	cfg := &s.Scoring
	if in.HorizonDays != nil {
		d := *in.HorizonDays
		if math.IsNaN(d) || d <= 0 || d > 36525 {
			return s, fmt.Errorf("settings: horizon_days %v: want more than 0 and at most 36525", d)
		}
		cfg.Horizon = time.Duration(d * float64(24*time.Hour))
	}
	for _, o := range []struct {
		v   *float64
		dst *float64
	}{{in.AnnualDiscountRate, &cfg.AnnualDiscountRate}, {in.Margin, &cfg.Margin}, {in.ExpectedLifetimeYears, &cfg.ExpectedLifetimeYears}} {
		if o.v != nil {
			*o.dst = *o.v
		}
	}
	if len(in.Tiers) > 0 {
		if err := strictUnmarshal(in.Tiers, &cfg.Tiers); err != nil {
			return s, fmt.Errorf("settings: tiers: %v", err)
		}
	}
	if len(in.Churn) > 0 {
		if err := strictUnmarshal(in.Churn, &cfg.Churn); err != nil {
			return s, fmt.Errorf("settings: churn: %v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return s, fmt.Errorf("settings: %v", err)
	}
	if in.Currency != nil {
		c := strings.ToUpper(strings.TrimSpace(*in.Currency))
		if c != "" && !money.ValidCurrency(c) {
			return s, fmt.Errorf("settings: currency %q: want an ISO 4217 code such as EUR, or \"\" for each customer's main currency", *in.Currency)
		}
		s.Currency = c
	}
	if len(in.Write) > 0 {
		var w writeJSON
		if err := strictUnmarshal(in.Write, &w); err != nil {
			return s, fmt.Errorf("settings: write: %v", err)
		}
		if w.Tags != nil {
			if err := checkChoices("write.tags", *w.Tags, tagKinds); err != nil {
				return s, err
			}
			s.TagKinds = slices.Clone(*w.Tags)
		}
		if w.UserFields != nil {
			if err := checkChoices("write.user_fields", *w.UserFields, UserFieldKeys); err != nil {
				return s, err
			}
			s.UserFields = slices.Clone(*w.UserFields)
		}
	}
	if len(in.Outreach) > 0 {
		if err := s.Outreach.parse(in.Outreach); err != nil {
			return s, fmt.Errorf("settings: outreach: %v", err)
		}
	}
	return s, nil
}

// checkChoices refuses values not in allowed and values given twice.
func checkChoices(what string, got, allowed []string) error {
	seen := map[string]bool{}
	for _, v := range got {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("settings: %s: %q is not one of %s", what, v, strings.Join(allowed, ", "))
		}
		if seen[v] {
			return fmt.Errorf("settings: %s: %q given twice", what, v)
		}
		seen[v] = true
	}
	return nil
}

// Unit is the model's time unit.
func (s Settings) Unit() clv.Unit {
	u, _ := clv.ParseUnit(s.Period) // validated by ParseSettings
	return u
}

// RecentTicketWindow is how far back a ticket counts as recent for the churn signals.
func (s Settings) RecentTicketWindow() time.Duration {
	return time.Duration(s.Scoring.Churn.RecentTicketDays) * 24 * time.Hour
}

// ManagedTags are the tags a customer with this tier, churn band and segment carries, of the kinds
// the tenant writes.
func (s Settings) ManagedTags(tier, band, segment string) []string {
	var out []string
	for _, k := range s.TagKinds {
		switch k {
		case TagKindChurn:
			out = append(out, s.TagPrefix+"churn_"+band)
		case TagKindTier:
			out = append(out, s.TagPrefix+"tier_"+tier)
		case TagKindSegment:
			out = append(out, s.TagPrefix+"segment_"+segment)
		}
	}
	slices.Sort(out)
	return out
}

// AllManagedTags lists every tag clvd may write under the current prefix, whatever kinds are chosen
// now (a kind turned off has its tags removed), so stale ones can be removed without touching
// others. The outreach tag is not among them: it marks tickets clvd created, and stays.
func (s Settings) AllManagedTags() []string {
	var out []string
	for _, t := range tiers {
		out = append(out, s.TagPrefix+"tier_"+t)
	}
	for _, b := range bands {
		out = append(out, s.TagPrefix+"churn_"+b)
	}
	for _, g := range segments {
		out = append(out, s.TagPrefix+"segment_"+g)
	}
	return out
}

// MarshalJSON renders the settings in their stored form with every effective value, so what an
// admin reads back can be sent back as it is.
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		TagPrefix             string           `json:"tag_prefix"`
		Period                string           `json:"period"`
		HorizonDays           float64          `json:"horizon_days"`
		AnnualDiscountRate    float64          `json:"annual_discount_rate"`
		Margin                float64          `json:"margin"`
		ExpectedLifetimeYears float64          `json:"expected_lifetime_years"`
		Tiers                 clv.TierConfig   `json:"tiers"`
		Churn                 clv.ChurnConfig  `json:"churn"`
		Currency              string           `json:"currency"`
		Write                 writeJSON        `json:"write"`
		Outreach              OutreachSettings `json:"outreach"`
	}{s.TagPrefix, s.Period, s.Scoring.Horizon.Hours() / 24, s.Scoring.AnnualDiscountRate, s.Scoring.Margin,
		s.Scoring.ExpectedLifetimeYears, s.Scoring.Tiers, s.Scoring.Churn, s.Currency,
		writeJSON{Tags: &s.TagKinds, UserFields: &s.UserFields}, s.Outreach})
}
