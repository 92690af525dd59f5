package shopify

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/money"
)

// Shopify payloads are large and only a dozen fields matter here. Each of those is decoded as
// json.RawMessage first and converted by the helpers below, so that a wrong type produces an error
// naming the field (encoding/json's own type errors name Go types, not payload paths), null and absent
// are treated alike, and numbers are never routed through float64.

// maxIDLen bounds ids so that a hostile payload cannot make the store index megabyte keys.
const maxIDLen = 255

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// jsonString returns a string field; "" when null or absent.
func jsonString(raw json.RawMessage, field string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", integrations.Malformed("%s must be a string", field)
	}
	return s, nil
}

// jsonID returns an id as a decimal string. Shopify ids are JSON numbers beyond 2^53 (for example
// 820982911946154508), which float64 would round, so the number's literal text is kept as it is. Ids
// sent as strings of digits are accepted too, since some serialisers quote large numbers. "" when
// null or absent.
func jsonID(raw json.RawMessage, field string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", integrations.Malformed("%s must be a whole number", field)
		}
	}
	if s == "" || len(s) > maxIDLen || strings.TrimLeft(s, "0123456789") != "" {
		return "", integrations.Malformed("%s must be a whole number, got %s", field, integrations.Clip(string(raw)))
	}
	return s, nil
}

// jsonTime parses an ISO 8601 / RFC 3339 timestamp such as "2016-05-17T04:14:36-04:00" and returns it
// in UTC; the zero time when null, absent or "" (an empty cancelled_at means "not cancelled").
func jsonTime(raw json.RawMessage, field string) (time.Time, error) {
	s, err := jsonString(raw, field)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, integrations.Malformed("%s: %q is not an RFC 3339 time", field, integrations.Clip(s))
	}
	return t.UTC(), nil
}

// jsonAmount parses a money amount into minor units of currency. Shopify sends prices as strings
// ("199.00") but some nested amounts, such as refund_line_items[].subtotal, as bare JSON numbers; both
// are parsed from their decimal text by money.ParseMinor, never via float64, so "0.1" is exactly 10
// cents. present is false when the field is null or absent.
func jsonAmount(raw json.RawMessage, currency, field string) (minor int64, present bool, err error) {
	if isNull(raw) {
		return 0, false, nil
	}
	raw = bytes.TrimSpace(raw)
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, false, integrations.Malformed("%s must be a decimal amount", field)
		}
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false, integrations.Malformed("%s must be a decimal amount, got %s", field, integrations.Clip(text))
	}
	v, err := money.ParseMinor(text, currency)
	if err != nil {
		return 0, false, integrations.Malformed("%s: %v", field, err)
	}
	return v, true, nil
}

// jsonCurrency returns an ISO 4217 code in upper case; "" when null or absent.
func jsonCurrency(raw json.RawMessage, field string) (string, error) {
	s, err := jsonString(raw, field)
	if err != nil || s == "" {
		return "", err
	}
	if !money.ValidCurrency(s) {
		return "", integrations.Malformed("%s: %q is not an ISO 4217 currency code", field, integrations.Clip(s))
	}
	return strings.ToUpper(s), nil
}

// jsonObject decodes an object into a struct of raw fields; ok is false when null or absent.
func jsonObject(raw json.RawMessage, field string, v any) (ok bool, err error) {
	if isNull(raw) {
		return false, nil
	}
	if bytes.TrimSpace(raw)[0] != '{' {
		return false, integrations.Malformed("%s must be an object", field)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, integrations.Malformed("%s: %v", field, err)
	}
	return true, nil
}

// requireObject is jsonObject for objects that must be there.
func requireObject(raw json.RawMessage, field string, v any) error {
	ok, err := jsonObject(raw, field, v)
	if err == nil && !ok {
		err = integrations.Malformed("%s must be an object", field)
	}
	return err
}

// jsonArray splits an array into its raw elements; nil when null or absent.
func jsonArray(raw json.RawMessage, field string) ([]json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if bytes.TrimSpace(raw)[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, integrations.Malformed("%s must be an array", field)
	}
	return items, nil
}

// cleanText drops control characters (NUL above all: PostgreSQL TEXT refuses it, which would turn one
// odd customer name into a delivery the worker can never store) and trims the result.
func cleanText(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s))
}

// email normalises an address; one carrying control characters counts as no address.
func email(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return ""
	}
	return integrations.NormalizeEmail(s)
}

// addMinor adds two amounts, failing instead of wrapping around on overflow.
func addMinor(a, b int64, field string) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, integrations.Malformed("%s: amounts overflow", field)
	}
	return s, nil
}
