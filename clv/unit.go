package clv

import (
	"fmt"
	"strings"
)

// Unit is the period a model counts time in. Its zero value is invalid, so a Model decoded from
// JSON without a unit is rejected rather than silently read in days.
type Unit int

// The supported model periods.
const (
	Day  Unit = 1
	Week Unit = 2
)

// DaysPerYear converts annual rates and years to days: the mean Gregorian year, so that a
// multi-year horizon does not drift by a day every four years.
const DaysPerYear = 365.25

// Days returns the length of one period in days (0 for an invalid unit).
func (u Unit) Days() float64 {
	switch u {
	case Day:
		return 1
	case Week:
		return 7
	}
	return 0
}

// Valid reports whether u is Day or Week.
func (u Unit) Valid() bool { return u == Day || u == Week }

func (u Unit) String() string {
	switch u {
	case Day:
		return "day"
	case Week:
		return "week"
	}
	return fmt.Sprintf("Unit(%d)", int(u))
}

// ParseUnit reads "day" or "week" (also "days", "d", "weeks", "w"; any case).
func ParseUnit(s string) (Unit, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "day", "days", "d":
		return Day, nil
	case "week", "weeks", "w":
		return Week, nil
	}
	return 0, fmt.Errorf("clv: unknown time unit %q (want day or week)", s)
}

// MarshalText encodes the unit as "day" or "week".
func (u Unit) MarshalText() ([]byte, error) {
	if !u.Valid() {
		return nil, fmt.Errorf("clv: cannot encode invalid unit %d", int(u))
	}
	return []byte(u.String()), nil
}

// UnmarshalText accepts what ParseUnit accepts.
func (u *Unit) UnmarshalText(b []byte) error {
	v, err := ParseUnit(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}
