package shopify

import (
	"os"
	"testing"
)

func BenchmarkParseOrder(b *testing.B) {
	body, err := os.ReadFile("testdata/order-refunded.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(TopicOrdersCreate, body, "d"); err != nil {
			b.Fatal(err)
		}
	}
}
