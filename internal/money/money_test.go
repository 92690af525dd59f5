package money

import "testing"

func TestParseMinor(t *testing.T) {
	cases := []struct {
		in, cur string
		want    int64
		err     bool
	}{
		{"10.00", "USD", 1000, false},
		{"10.5", "usd", 1050, false},
		{"0.05", "EUR", 5, false},
		{"-3.10", "EUR", -310, false},
		{"1999", "USD", 199900, false},
		{".5", "USD", 50, false},
		{"5.", "USD", 500, false},
		{"1000", "JPY", 1000, false},
		{"1000.00", "JPY", 1000, false},
		{"1.234", "KWD", 1234, false},
		{"0", "USD", 0, false},
		{"1.005", "USD", 0, true},
		{"1.5", "JPY", 0, true},
		{"", "USD", 0, true},
		{"-", "USD", 0, true},
		{".", "USD", 0, true},
		{"1e3", "USD", 0, true},
		{"1,000.00", "USD", 0, true},
		{"abc", "USD", 0, true},
		{"1234567890123456.00", "USD", 0, true},
		{"999999999999999.99", "USD", 99999999999999999, false},
	}
	for _, c := range cases {
		got, err := ParseMinor(c.in, c.cur)
		if (err != nil) != c.err {
			t.Errorf("ParseMinor(%q,%q) err = %v, want error %v", c.in, c.cur, err, c.err)
			continue
		}
		if !c.err && got != c.want {
			t.Errorf("ParseMinor(%q,%q) = %d, want %d", c.in, c.cur, got, c.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	cases := []struct {
		minor int64
		cur   string
		want  string
	}{
		{1000, "USD", "10.00"}, {5, "USD", "0.05"}, {-5, "USD", "-0.05"}, {1000, "JPY", "1000"}, {1234, "KWD", "1.234"}, {0, "USD", "0.00"},
	}
	for _, c := range cases {
		if got := Format(c.minor, c.cur); got != c.want {
			t.Errorf("Format(%d,%s) = %q, want %q", c.minor, c.cur, got, c.want)
		}
		back, err := ParseMinor(c.want, c.cur)
		if err != nil || back != c.minor {
			t.Errorf("round trip %q = %d, %v", c.want, back, err)
		}
	}
	if got := ToMajor(1050, "USD"); got != 10.5 {
		t.Errorf("ToMajor = %v", got)
	}
}

func FuzzParseMinor(f *testing.F) {
	for _, s := range []string{"10.00", "-1.5", "0", ".5", "1e9", "999999999999999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseMinor(s, "USD")
		if err != nil {
			return
		}
		back, err := ParseMinor(Format(v, "USD"), "USD")
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, v, Format(v, "USD"), back, err)
		}
	})
}
