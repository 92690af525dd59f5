package clv

import (
	"testing"
	"time"
)

func TestSummarizeConventions(t *testing.T) {
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	ny := time.FixedZone("EST", -5*3600)
	end := utc(2024, 3, 31, 15) // time of day on the end date does not matter: the day counts
	ps := []Purchase{
		{utc(2024, 3, 10, 9), 5},                              // repeat day 2 (listed out of order)
		{utc(2024, 1, 1, 8), 10},                              // first day
		{utc(2024, 1, 1, 20), 15},                             // same UTC day: one transaction of 25
		{time.Date(2024, 1, 31, 22, 0, 0, 0, ny), 7},          // 2024-02-01 03:00 UTC: counts on Feb 1
		{utc(2024, 3, 31, 23), 3},                             // on the end day: included
		{utc(2024, 4, 1, 0), 100},                             // after the end day: ignored
		{time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), -2.5}, // same day as the 5: net 2.5
	}
	s, ok := Summarize(ps, end, Day)
	if !ok {
		t.Fatal("no summary")
	}
	// Days: Jan 1 (first), Feb 1, Mar 10, Mar 31 → x = 3.
	if s.Frequency != 3 || s.Transactions != 4 {
		t.Errorf("x = %v, transactions %d", s.Frequency, s.Transactions)
	}
	if s.Recency != 90 || s.T != 90 { // 2024 is a leap year: Jan 1 → Mar 31 is 90 days
		t.Errorf("t_x = %v, T = %v, want 90, 90", s.Recency, s.T)
	}
	if want := (7 + 2.5 + 3) / 3.0; s.MonetaryValue != want {
		t.Errorf("zbar = %v, want %v (repeat days only)", s.MonetaryValue, want)
	}
	if s.Total != 10+15+7+5-2.5+3 {
		t.Errorf("total %v", s.Total)
	}
	if !s.First.Equal(utc(2024, 1, 1, 8)) || !s.Last.Equal(utc(2024, 3, 31, 23)) {
		t.Errorf("first %v last %v", s.First, s.Last)
	}
	w, _ := Summarize(ps, end, Week)
	if w.Recency != 90.0/7 || w.T != 90.0/7 || w.Frequency != 3 {
		t.Errorf("weeks: %+v", w)
	}
	if _, ok := Summarize(ps, utc(2023, 12, 31, 23), Day); ok {
		t.Error("summary before the first purchase")
	}
	one, _ := Summarize(ps[1:2], end, Day)
	if one.Frequency != 0 || one.MonetaryValue != 0 || one.Recency != 0 || one.T != 90 || one.Transactions != 1 {
		t.Errorf("single purchase: %+v", one)
	}
	// The caller's slice is not reordered.
	if !ps[0].Time.Equal(utc(2024, 3, 10, 9)) {
		t.Error("input modified")
	}
}
