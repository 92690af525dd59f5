// Package money converts decimal strings to exact integer minor units and back. Money in clvd is
// never a float until it reaches the statistical models.
package money

import (
	"fmt"
	"strconv"
	"strings"
)

// exponents lists ISO 4217 currencies whose minor unit is not 1/100.
var exponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// Exponent is the number of decimal digits of currency's minor unit (2 unless listed otherwise).
func Exponent(currency string) int {
	if e, ok := exponents[strings.ToUpper(currency)]; ok {
		return e
	}
	return 2
}

// ValidCurrency reports whether c looks like an ISO 4217 code (three ASCII letters).
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		ch := c[i] | 0x20
		if ch < 'a' || ch > 'z' {
			return false
		}
	}
	return true
}

// ParseMinor parses a decimal amount such as "10.5", "-3.00" or "1999" into minor units of currency.
// It refuses exponents, thousands separators, more decimals than the currency has (unless they are
// zeros) and values beyond ±10^15 major units, so nothing is silently rounded or overflowed.
func ParseMinor(s, currency string) (int64, error) {
	raw := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("amount is empty")
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("amount %q is not a decimal number", raw)
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("amount %q is not a decimal number", raw)
			}
		}
	}
	exp := Exponent(currency)
	trimmed := strings.TrimRight(frac, "0")
	if len(trimmed) > exp {
		return 0, fmt.Errorf("amount %q has more decimals than %s allows (%d)", raw, strings.ToUpper(currency), exp)
	}
	if len(frac) > exp {
		frac = frac[:exp]
	}
	frac += strings.Repeat("0", exp-len(frac))
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 15 {
		return 0, fmt.Errorf("amount %q is too large", raw)
	}
	digits := intPart + frac
	if digits == "" { // "0" in a currency without decimals
		digits = "0"
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %v", raw, err)
	}
	if neg {
		v = -v
	}
	return v, nil
}

// Format renders minor units of currency as a decimal string ("12.34", "-0.05", "1000" for JPY).
func Format(minor int64, currency string) string {
	exp := Exponent(currency)
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = uint64(-minor)
	}
	s := strconv.FormatUint(u, 10)
	if exp > 0 {
		if len(s) <= exp {
			s = strings.Repeat("0", exp-len(s)+1) + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ToMajor converts minor units to a float in major units, for the statistical models only.
func ToMajor(minor int64, currency string) float64 {
	f := float64(minor)
	for i := Exponent(currency); i > 0; i-- {
		f /= 10
	}
	return f
}
