package shopify

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/internal/jsonscan"
	"github.com/clvd/clvd/internal/money"
)

// Shopify payloads are large and only a dozen fields matter here. The body is validated and split
// into its fields in one pass (jsonscan), and each field clvd reads is converted by the methods
// below, so that a wrong type produces an error naming the field with its place in the payload,
// null and absent are treated alike, and numbers are never routed through float64. Values are
// sub-slices of the body: nothing is copied but the strings that are kept.

// maxIDLen bounds ids so that a hostile payload cannot make the store index megabyte keys.
const maxIDLen = 255

// Capacities of the buffers that the readers split objects and arrays into. The buffers do not
// escape, so they live on the stack and a payload of ordinary size is split without allocating; a
// larger one only makes append grow them. Sized for Shopify's resources: an order carries several
// dozen fields, a customer or a transaction a few dozen at most.
const (
	orderFieldsBuf = 128
	fieldsBuf      = 32
	itemsBuf       = 16
)

// path is where a value sits in the payload, for error messages: "customer.email",
// "refunds[2].transactions[0].amount". It is only rendered when an error needs it, so reading a
// valid payload builds no names. It is a value holding no pointers to other readers' variables:
// escape analysis does not tell one field of a struct from another, so a child pointing to its
// parent would send every reader's field buffer to the heap.
type path struct {
	steps [maxSteps]step
	n     int
}

// maxSteps is the longest name given: refunds[i].refund_line_items[j].subtotal_set.shop_money.amount
// (the case "deepest name" of TestParseEventTrickyBodies reaches it).
const maxSteps = 5

// step is a member's name, and its index when the member is an array and the step is one item.
type step struct {
	name  string
	index int // -1 for the member itself
}

// member is the path of a member of the value at p.
func (p path) member(name string) path {
	p.steps[p.n] = step{name: name, index: -1}
	p.n++
	return p
}

// item is the path of item i of the array at p.
func (p path) item(i int) path {
	p.steps[p.n-1].index = i
	return p
}

func (p path) String() string {
	var b []byte
	for i, s := range p.steps[:p.n] {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, s.name...)
		if s.index >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
		}
	}
	return string(b)
}

// object is one JSON object of the payload, split into its members.
type object struct {
	path   path
	fields jsonscan.Fields
}

// objectAt splits raw, a value cut from the validated body, which must be an object or null (absent
// included): present is false then. buf receives the fields.
func objectAt(raw []byte, at path, buf jsonscan.Fields) (o object, present bool, err error) {
	o.path = at
	if jsonscan.IsNull(raw) {
		return o, false, nil
	}
	if jsonscan.KindOf(raw) != jsonscan.ObjectKind {
		return o, false, integrations.Malformed("%s must be an object", at.String())
	}
	// The body was validated whole: this only splits, and cannot fail.
	if o.fields, err = jsonscan.Object(raw, buf); err != nil {
		return o, false, integrations.Malformed("%s: %v", at.String(), err)
	}
	return o, true, nil
}

// name renders the path of a member, for an error message.
func (o *object) name(field string) string { return o.path.member(field).String() }

// raw returns a member's value; nil when absent or null. Lookup is encoding/json's for a struct
// field tagged name, as the payload used to be decoded: the key may differ in case ("ID" is "id"),
// and the last match wins.
func (o *object) raw(name string) []byte {
	v, _ := o.fields.Fold(name)
	if jsonscan.IsNull(v) {
		return nil
	}
	return v
}

// object reads a member that must be an object when present; present is false when absent or null.
func (o *object) object(name string, buf jsonscan.Fields) (sub object, present bool, err error) {
	return objectAt(o.raw(name), o.path.member(name), buf)
}

// string returns a string member; "" when null or absent.
func (o *object) string(name string) (string, error) {
	raw := o.raw(name)
	if raw == nil {
		return "", nil
	}
	if jsonscan.KindOf(raw) != jsonscan.String {
		return "", integrations.Malformed("%s must be a string", o.name(name))
	}
	s, err := jsonscan.StringValue(raw)
	if err != nil {
		return "", integrations.Malformed("%s must be a string", o.name(name))
	}
	return s, nil
}

// is reports whether a string member equals want in any case, as strings.EqualFold on what string
// returns (absent and null being ""), with string's errors. A transaction's kind and status are only
// compared, so they are not copied: without escapes a string's value is its own bytes, invalid UTF-8
// aside, which decoding replaces with U+FFFD and bytes.EqualFold reads as U+FFFD, to the same result.
func (o *object) is(name, want string) (bool, error) {
	raw := o.raw(name)
	if raw == nil {
		return want == "", nil
	}
	if jsonscan.KindOf(raw) == jsonscan.String && bytes.IndexByte(raw, '\\') < 0 {
		return bytes.EqualFold(raw[1:len(raw)-1], []byte(want)), nil
	}
	s, err := o.string(name)
	return strings.EqualFold(s, want), err
}

// id returns an id as a decimal string. Shopify ids are JSON numbers beyond 2^53 (for example
// 820982911946154508), which float64 would round, so the number's literal text is kept as it is. Ids
// sent as strings of digits are accepted too, since some serialisers quote large numbers. "" when
// null or absent.
func (o *object) id(name string) (string, error) {
	raw := o.raw(name)
	if raw == nil {
		return "", nil
	}
	var s string
	if jsonscan.KindOf(raw) == jsonscan.String {
		var err error
		if s, err = jsonscan.StringValue(raw); err != nil {
			return "", integrations.Malformed("%s must be a whole number", o.name(name))
		}
	} else {
		s = string(raw) // a number's literal text; anything else is refused just below
	}
	if s == "" || len(s) > maxIDLen || strings.TrimLeft(s, "0123456789") != "" {
		return "", integrations.Malformed("%s must be a whole number, got %s", o.name(name), integrations.Clip(string(raw)))
	}
	return s, nil
}

// time parses an ISO 8601 / RFC 3339 timestamp such as "2016-05-17T04:14:36-04:00" and returns it
// in UTC; the zero time when null, absent or "" (an empty cancelled_at means "not cancelled").
func (o *object) time(name string) (time.Time, error) {
	s, err := o.string(name)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, integrations.Malformed("%s: %q is not an RFC 3339 time", o.name(name), integrations.Clip(s))
	}
	return t.UTC(), nil
}

// amount parses a money amount into minor units of currency. Shopify sends prices as strings
// ("199.00") but some nested amounts, such as refund_line_items[].subtotal, as bare JSON numbers; both
// are parsed from their decimal text by money.ParseMinor, never via float64, so "0.1" is exactly 10
// cents. present is false when the member is null or absent.
func (o *object) amount(name, currency string) (minor int64, present bool, err error) {
	raw := o.raw(name)
	if raw == nil {
		return 0, false, nil
	}
	var text string
	switch jsonscan.KindOf(raw) {
	case jsonscan.String:
		if text, err = jsonscan.StringValue(raw); err != nil {
			return 0, false, integrations.Malformed("%s must be a decimal amount", o.name(name))
		}
	case jsonscan.Number:
		text = string(raw)
	default:
		return 0, false, integrations.Malformed("%s must be a decimal amount, got %s", o.name(name), integrations.Clip(string(raw)))
	}
	v, err := money.ParseMinor(text, currency)
	if err != nil {
		return 0, false, integrations.Malformed("%s: %v", o.name(name), err)
	}
	return v, true, nil
}

// currency returns an ISO 4217 code in upper case; "" when null or absent.
func (o *object) currency(name string) (string, error) {
	s, err := o.string(name)
	if err != nil || s == "" {
		return "", err
	}
	if !money.ValidCurrency(s) {
		return "", integrations.Malformed("%s: %q is not an ISO 4217 currency code", o.name(name), integrations.Clip(s))
	}
	return strings.ToUpper(s), nil
}

// array is one JSON array of the payload, split into its raw items.
type array struct {
	path  path
	items [][]byte
}

// array reads a member that must be an array when present; no items when absent or null. buf
// receives the items.
func (o *object) array(name string, buf [][]byte) (a array, err error) {
	a.path = o.path.member(name)
	raw := o.raw(name)
	if raw == nil {
		return a, nil
	}
	if jsonscan.KindOf(raw) != jsonscan.ArrayKind {
		return a, integrations.Malformed("%s must be an array", a.path.String())
	}
	// The body was validated whole: this only splits, and cannot fail.
	if a.items, err = jsonscan.Array(raw, buf); err != nil {
		return a, integrations.Malformed("%s: %v", a.path.String(), err)
	}
	return a, nil
}

// object reads item i, which must be an object (null is refused too).
func (a *array) object(i int, buf jsonscan.Fields) (object, error) {
	o, present, err := objectAt(a.items[i], a.path.item(i), buf)
	if err == nil && !present {
		err = integrations.Malformed("%s must be an object", o.path.String())
	}
	return o, err
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

// addMinor adds two amounts; ok is false when the sum would wrap around.
func addMinor(a, b int64) (sum int64, ok bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
