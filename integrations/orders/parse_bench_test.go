package orders

import "testing"

func BenchmarkParseOrder(b *testing.B) {
	body := []byte(Example)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseOrder(body); err != nil {
			b.Fatal(err)
		}
	}
}
