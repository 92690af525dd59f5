package clv

import (
	"encoding/json"
	"math"
	"testing"
)

// popScore makes a score with the fields the population uses.
func popScore(clv float64, tx int, total float64, lastDaysAgo, firstDaysAgo int) Score {
	return Score{Model: "bgnbd", ScoredAt: now, PredictedCLV: clv, Summary: Summary{
		Transactions: tx, Total: total, Last: now.AddDate(0, 0, -lastDaysAgo), First: now.AddDate(0, 0, -firstDaysAgo)}}
}

func TestTiersFollowShares(t *testing.T) {
	cfg := DefaultConfig()
	b := NewPopulationBuilder()
	var scores []Score
	for i := range 10000 {
		s := popScore(float64(i+1), 2+i%7, float64(i%500), i%400, 400+i%100)
		scores = append(scores, s)
		b.Add(s)
	}
	b.Add(Score{}) // no purchases: ignored
	p := b.Build(cfg)
	if p.Customers != 10000 || p.Sampled || p.Model != "bgnbd" {
		t.Fatalf("%+v", p)
	}
	// Round trip through JSON, as the service stores it.
	raw, _ := json.Marshal(p)
	var q Population
	if err := json.Unmarshal(raw, &q); err != nil || q != p {
		t.Fatalf("JSON round trip: %v\n%s", err, raw)
	}
	count := map[string]int{}
	for _, s := range scores {
		count[q.Tier(s, cfg, now)]++
	}
	if count["platinum"] != 500 || count["gold"] != 1500 || count["silver"] != 3000 || count["bronze"] != 5000 {
		t.Errorf("tier counts %v, want 500/1500/3000/5000", count)
	}
	// Quintile cut-points of a uniform 0..399 recency.
	if p.RecencyDays != [4]float64{79, 159, 239, 319} {
		t.Errorf("recency cuts %v", p.RecencyDays)
	}
}

func TestTierNewAndEmptyPopulation(t *testing.T) {
	cfg := DefaultConfig()
	var zero Population
	cases := []struct {
		s    Score
		want string
	}{
		{Score{}, "new"},                               // no purchase
		{popScore(100, 1, 50, 10, 10), "new"},          // one purchase 10 days ago
		{popScore(100, 1, 50, 30, 30), "new"},          // exactly 30 days
		{popScore(100, 1, 50, 31, 31), "bronze"},       // older single purchase: ranked
		{popScore(100, 2, 50, 3, 5), "bronze"},         // two purchases: ranked
		{popScore(math.NaN(), 3, 50, 3, 90), "bronze"}, // garbage in: never a top tier
	}
	for i, c := range cases {
		if got := zero.Tier(c.s, cfg, now); got != c.want {
			t.Errorf("case %d: %q, want %q", i, got, c.want)
		}
	}
	// A customer with no predicted value is bronze even when the cut-points are 0.
	b := NewPopulationBuilder()
	for range 100 {
		b.Add(popScore(0, 2, 10, 5, 100))
	}
	p := b.Build(cfg)
	if got := p.Tier(popScore(0, 2, 10, 5, 100), cfg, now); got != "bronze" {
		t.Errorf("zero CLV tier %q", got)
	}
	if got := zero.Segment(popScore(0, 0, 0, 0, 0), now); got != "new" {
		t.Errorf("no purchase segment %q", got)
	}
}

func TestSegments(t *testing.T) {
	// A population with distinct quintiles: recency 0..99 days, frequency 1..100, spend 1..100.
	b := NewPopulationBuilder()
	for i := range 100 {
		b.Add(popScore(1, i+1, float64(i+1), i, 200))
	}
	p := b.Build(DefaultConfig())
	// R score 5 ↔ ≤ 19 days, 4 ↔ 20–39, 3 ↔ 40–59, 2 ↔ 60–79, 1 ↔ ≥ 80; F and M score 5 ↔ > 80.
	cases := []struct {
		days, tx int
		total    float64
		want     string
	}{
		{5, 1, 500, "new"},                // first-time buyer, recent
		{5, 90, 90, "champions"},          // R5 F5 M5
		{30, 90, 90, "loyal"},             // R4 FM5
		{50, 70, 90, "loyal"},             // R3 F4 M5 → FM 5
		{5, 30, 30, "potential_loyalist"}, // R5 FM2
		{50, 50, 50, "at_risk"},           // R3 FM3
		{70, 70, 70, "at_risk"},           // R2 FM4
		{90, 95, 95, "cant_lose"},         // R1 FM5
		{50, 10, 10, "hibernating"},       // R3 FM1
		{70, 10, 30, "hibernating"},       // R2 FM2 (F1 M2 → 2)
		{90, 10, 10, "lost"},              // R1 FM1
		{90, 1, 10, "lost"},               // single old purchase
	}
	for _, c := range cases {
		s := popScore(1, c.tx, c.total, c.days, 300)
		if got := p.Segment(s, now); got != c.want {
			t.Errorf("%d days, %d orders, %v spent: %q, want %q", c.days, c.tx, c.total, got, c.want)
		}
	}
	// Without a population: default cut-points on recency and frequency.
	var zero Population
	if got := zero.Segment(popScore(1, 8, 1000, 3, 300), now); got != "champions" {
		t.Errorf("zero population frequent recent buyer: %q", got)
	}
	if got := zero.Segment(popScore(1, 1, 10, 700, 700), now); got != "lost" {
		t.Errorf("zero population old single buyer: %q", got)
	}
}

// Past SampleSize customers the builder samples: bounded memory, cut-points still accurate.
func TestPopulationSamplesLargeTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 400,000 scores")
	}
	b := NewPopulationBuilder()
	const n = 400000
	for i := range n {
		// A permutation of 1..n so the sample sees values in no particular order.
		v := float64((i*7919)%n + 1)
		b.Add(popScore(v, 2, v, 1, 10))
	}
	p := b.Build(DefaultConfig())
	if !p.Sampled || p.Customers != n || len(b.rows) != SampleSize {
		t.Fatalf("sampled %v, customers %d, kept %d", p.Sampled, p.Customers, len(b.rows))
	}
	// The top-5% cut of 1..n is 0.95n; a uniform sample of 2^18 is within ~0.1% of rank.
	if math.Abs(p.Platinum-0.95*n) > 0.003*n || math.Abs(p.Silver-0.5*n) > 0.005*n {
		t.Errorf("cuts %v %v, want ≈ %v %v", p.Platinum, p.Silver, 0.95*n, 0.5*n)
	}
}
