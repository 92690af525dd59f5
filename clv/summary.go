package clv

import (
	"math"
	"slices"
	"time"
)

// Purchase is one order: when it was placed and its net value in major currency units.
//
// Every purchase counts as a purchase occasion whatever its amount: a $0 order (a free sample,
// a fully discounted order; CDNOW has such rows) is still a visit, so it adds to the frequency.
// Amounts are summed as given, so zero or negative amounts lower the customer's spend; the value
// models skip customers whose mean repeat value is not positive. A NaN or infinite amount counts
// as 0 (the occasion is kept, the garbage value is not).
type Purchase struct {
	Time   time.Time `json:"time"`
	Amount float64   `json:"amount"`
}

// Summary is the RFM summary of one customer that the models consume.
type Summary struct {
	// Frequency is x, the number of repeat transactions: distinct UTC purchase days after the first.
	Frequency float64 `json:"frequency"`
	// Recency is t_x, the time from the first to the last purchase day, in model periods.
	Recency float64 `json:"recency"`
	// T is the customer's age: the time from the first purchase day to the summary's end day.
	T float64 `json:"T"`
	// MonetaryValue is zbar, the mean value of the repeat transactions (the first one excluded,
	// as the Gamma-Gamma model requires); 0 when Frequency is 0.
	MonetaryValue float64 `json:"monetary_value"`
	// Transactions is Frequency+1 (0 for a customer with no purchase).
	Transactions int `json:"transactions"`
	// First and Last are the times of the earliest and the latest purchase counted.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Total is the net amount of all counted purchases, the first included.
	Total float64 `json:"total"`
}

// dayNumber is the number of whole UTC days from 1970-01-01 to t's UTC day.
func dayNumber(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// Summarize builds a customer's summary from the purchases made on or before end's UTC day.
// Purchases may come in any order. It returns false when no purchase is on or before end.
// An invalid unit is treated as Day.
func Summarize(purchases []Purchase, end time.Time, unit Unit) (Summary, bool) {
	per := unit.Days()
	if per == 0 {
		per = 1
	}
	endDay := dayNumber(end)
	// Only the purchases in the window, in time order; a copy so the caller's slice is untouched.
	ps := make([]Purchase, 0, len(purchases))
	for _, p := range purchases {
		if dayNumber(p.Time) <= endDay {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return Summary{}, false
	}
	slices.SortFunc(ps, func(a, b Purchase) int { return a.Time.Compare(b.Time) })

	var s Summary
	s.First, s.Last = ps[0].Time, ps[len(ps)-1].Time
	firstDay := dayNumber(ps[0].Time)
	curDay, lastDay := firstDay, firstDay
	var dayTotal, repeatSum float64
	for i, p := range ps {
		amt := p.Amount
		if math.IsNaN(amt) || math.IsInf(amt, 0) {
			amt = 0
		}
		s.Total += amt
		d := dayNumber(p.Time)
		if i > 0 && d != curDay {
			// A new day closes the previous day's transaction.
			if curDay != firstDay {
				repeatSum += dayTotal
			}
			s.Transactions++
			curDay, dayTotal = d, 0
		}
		dayTotal += amt
		lastDay = d
	}
	s.Transactions++ // the last open day
	if curDay != firstDay {
		repeatSum += dayTotal
	}
	x := s.Transactions - 1
	s.Frequency = float64(x)
	s.Recency = float64(lastDay-firstDay) / per
	s.T = float64(endDay-firstDay) / per
	if x > 0 {
		s.MonetaryValue = repeatSum / float64(x)
	}
	return s, true
}
