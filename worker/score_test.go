package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/store"
)

// modelSource serves ListModels and GetTenantState from memory; onLoad runs inside the load, where a
// concurrent refit's invalidation can land.
type modelSource struct {
	Store
	population *clv.Population
	loads      int
	onLoad     func()
}

func (m *modelSource) ListModels(context.Context, string, int) ([]store.ModelRecord, error) {
	m.loads++
	if m.onLoad != nil {
		m.onLoad()
	}
	return nil, nil
}

func (m *modelSource) GetTenantState(context.Context, string, string) (json.RawMessage, time.Time, error) {
	if m.population == nil {
		return nil, time.Time{}, store.ErrNotFound
	}
	raw, err := json.Marshal(m.population)
	return raw, time.Now(), err
}

func TestModelCache(t *testing.T) {
	ctx := context.Background()
	pop := &clv.Population{}

	t.Run("a tenant without a population is read fresh each time", func(t *testing.T) {
		c := &modelCache{ttl: time.Hour, entries: map[string]modelEntry{}}
		src := &modelSource{}
		for range 3 {
			if _, err := c.get(ctx, src, "t"); err != nil {
				t.Fatal(err)
			}
		}
		if src.loads != 3 {
			t.Fatalf("loads = %d, want 3", src.loads)
		}
		src.population = pop
		for range 3 {
			sc, err := c.get(ctx, src, "t")
			if err != nil || sc.population == nil {
				t.Fatalf("population not seen: %+v %v", sc, err)
			}
		}
		if src.loads != 4 {
			t.Fatalf("loads = %d, want 4 (then cached)", src.loads)
		}
	})

	t.Run("a load overtaken by an invalidation is not cached", func(t *testing.T) {
		c := &modelCache{ttl: time.Hour, entries: map[string]modelEntry{}}
		src := &modelSource{population: pop}
		src.onLoad = func() { c.invalidate("t"); src.onLoad = nil }
		if _, err := c.get(ctx, src, "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.get(ctx, src, "t"); err != nil {
			t.Fatal(err)
		}
		if src.loads != 2 {
			t.Fatalf("loads = %d, want 2: the first load read data older than the invalidation", src.loads)
		}
		if _, err := c.get(ctx, src, "t"); err != nil || src.loads != 2 {
			t.Fatalf("loads = %d, %v: the second load should be cached", src.loads, err)
		}
	})
}
