// Package clv scores customers' lifetime value (CLV) and churn risk from their purchase histories.
//
// It is pure: no I/O, no configuration from the environment. The service feeds it purchases and
// support-ticket counts and stores what it returns (models, populations and scores are JSON
// values).
//
// # Models
//
//   - BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for the number
//     of future purchases and the probability that a customer is still active, fitted by maximum
//     likelihood with an analytic gradient (see [Fit]).
//   - Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV") for the expected value of a
//     customer's future orders, fitted on repeat customers only.
//   - Interim heuristics for tenants with too little data to fit (cold start, see [ErrNotEnoughData]
//     and [ScoreCustomer]).
//
// # Time conventions
//
// Time is counted in whole UTC calendar days: purchases on the same UTC day are one transaction
// (their amounts summed), and every duration in a [Summary] is a whole number of days expressed in
// the model's [Unit] (days, or weeks of 7 days). A summary taken "at" a moment end covers the
// purchases made on or before end's UTC day, and the customer's age T is the number of days from
// the first purchase day to end's day. With end = 1997-09-30 a customer whose first purchase was on
// 1997-01-01 has T = 272 days = 38.857 weeks, matching the published CDNOW summaries.
//
// Money is in the tenant's major currency unit (e.g. dollars, not cents). Discount rates are
// annual; the horizon is calendar time ([Config.Horizon]); both are converted to the model's
// period inside, so a model fitted in days and one fitted in weeks give the same CLV.
//
// # Scoring
//
// [NewScorer] prepares a (model, config) pair once; [Scorer.Score] and the convenience
// [ScoreCustomer] (which caches scorers) return a [Score]: historic, simple and predicted CLV,
// P(alive), expected purchases and order value, churn risk with reasons, and the expected next
// order date. With no usable model every score says Model "heuristic" and carries a note why.
//
// Defaults ([DefaultConfig], [FitOptions]):
//
//   - cold start: fitting needs 50 customers and 20 repeat customers, else [ErrNotEnoughData];
//   - horizon 365 days, annual discount rate 10%, margin 1 (revenue), simple-formula lifetime 3 years;
//   - churn = logistic(logit(1 − P(alive)) + 0.4·open tickets + 0.6·urgent open tickets +
//     0.2·tickets in the last 30 days + 0.8·bad ratings), each count capped at 3; bands low < 0.3 ≤
//     medium < 0.6 ≤ high. One-time buyers, whom the BG/NBD never lets drop out, get the heuristic
//     P(alive) for their churn base;
//   - tiers: platinum top 5%, gold next 15%, silver next 30% of predicted CLV, bronze the rest; "new"
//     for no purchase or a single purchase at most 30 days old ([Population.Tier]);
//   - RFM segments from quintile scores ([Population.Segment]);
//   - heuristics: P(alive) = exp(−days since last order / (2 × usual gap)), usual gap = the
//     customer's mean days between orders (at least 14) or 90 days with one order; orders per year
//     = transactions / max(years since first order, 1) (see [Scorer.Predict] and [Score]).
package clv
