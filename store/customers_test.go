package store

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
)

func nan() float64            { return math.NaN() }
func isNaN(f float64) bool    { return math.IsNaN(f) }
func ptr[T any](v T) *T       { return &v }
func ids(xs ...int64) []int64 { return xs }

func TestResolveCustomer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)

		// Each step resolves an identity; want names the customer it must land on ("" = guest) and
		// whether it is created. The last step's expected stored fields are checked after each step.
		type fields struct{ email, ext, zd, name string }
		steps := []struct {
			name    string
			id      Identity
			want    string // label of the expected customer; new labels must be created
			created bool
			after   fields // the customer's identity after the step
		}{
			{"guest: nothing identifying", Identity{Name: "Nobody"}, "", false, fields{}},
			{"new by email (normalised)", Identity{Email: " Ann@Example.com ", Name: "Ann"}, "ann", true,
				fields{"ann@example.com", "", "", "Ann"}},
			{"email match links external id", Identity{Email: "ann@example.com", ExternalID: "shopify:1"}, "ann", false,
				fields{"ann@example.com", "shopify:1", "", "Ann"}},
			{"external id match links zendesk user, name updated", Identity{ExternalID: "shopify:1", ZendeskUserID: "zd-9", Name: "Ann B."}, "ann", false,
				fields{"ann@example.com", "shopify:1", "zd-9", "Ann B."}},
			{"zendesk match, different email not overwritten", Identity{Email: "ann.other@example.com", ZendeskUserID: "zd-9"}, "ann", false,
				fields{"ann@example.com", "shopify:1", "zd-9", "Ann B."}},
			{"new by external id only", Identity{ExternalID: "orders:c-42"}, "bob", true,
				fields{"", "orders:c-42", "", ""}},
			{"email first: matches ann, bob's external id stays bob's", Identity{Email: "ann@example.com", ExternalID: "orders:c-42"}, "ann", false,
				fields{"ann@example.com", "shopify:1", "zd-9", "Ann B."}},
			{"external id match fills bob's email", Identity{Email: "bob@example.com", ExternalID: "orders:c-42", Name: "Bob"}, "bob", false,
				fields{"bob@example.com", "orders:c-42", "", "Bob"}},
			{"empty name does not clear", Identity{Email: "bob@example.com"}, "bob", false,
				fields{"bob@example.com", "orders:c-42", "", "Bob"}},
			{"new by zendesk user only", Identity{ZendeskUserID: "zd-77", Name: "Cy"}, "cy", true,
				fields{"", "", "zd-77", "Cy"}},
			{"bob's empty zendesk field not filled with cy's user", Identity{Email: "bob@example.com", ZendeskUserID: "zd-77"}, "bob", false,
				fields{"bob@example.com", "orders:c-42", "", "Bob"}},
		}
		labels := map[string]int64{}
		for _, st := range steps {
			id, created, err := db.ResolveCustomer(ctx, tid, st.id)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if st.want == "" {
				if id != 0 || created {
					t.Fatalf("%s: got customer %d (created %v), want guest", st.name, id, created)
				}
				continue
			}
			if created != st.created {
				t.Errorf("%s: created = %v", st.name, created)
			}
			if prev, ok := labels[st.want]; ok && prev != id {
				t.Fatalf("%s: got customer %d, want %s (%d)", st.name, id, st.want, prev)
			} else if !ok {
				if !created {
					t.Fatalf("%s: %s not created", st.name, st.want)
				}
				for l, other := range labels {
					if other == id {
						t.Fatalf("%s: new customer reuses %s's id", st.name, l)
					}
				}
				labels[st.want] = id
			}
			c := mustCustomer(t, db, tid, id)
			got := fields{c.Email, c.ExternalID, c.ZendeskUserID, c.Name}
			if got != st.after {
				t.Errorf("%s: customer = %+v, want %+v", st.name, got, st.after)
			}
		}

		// Lookups.
		ann := labels["ann"]
		if c, err := db.CustomerByEmail(ctx, tid, "ANN@example.com"); err != nil || c.ID != ann {
			t.Errorf("CustomerByEmail = %v, %v", c, err)
		}
		if c, err := db.CustomerByZendeskUser(ctx, tid, "zd-9"); err != nil || c.ID != ann {
			t.Errorf("CustomerByZendeskUser = %v, %v", c, err)
		}
		if _, err := db.CustomerByEmail(ctx, tid, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("CustomerByEmail(unknown): %v", err)
		}
		if _, err := db.CustomerByEmail(ctx, tid, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("CustomerByEmail(empty): %v", err)
		}
		if _, err := db.CustomerByZendeskUser(ctx, tid, "zd-0"); !errors.Is(err, ErrNotFound) {
			t.Errorf("CustomerByZendeskUser(unknown): %v", err)
		}
		if _, err := db.GetCustomer(ctx, tid, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetCustomer(unknown): %v", err)
		}
		c := mustCustomer(t, db, tid, ann)
		if c.TenantID != tid || c.CreatedAt.IsZero() || c.DataVersion != 0 || c.ScoredVersion != 0 || c.Score != nil || c.UserTagsPushed != nil {
			t.Errorf("fresh customer = %+v", c)
		}

		// Tenants are separate worlds: the same email is another customer, and ids do not cross.
		other := mustTenant(t, db)
		oid, created, err := db.ResolveCustomer(ctx, other, Identity{Email: "ann@example.com"})
		if err != nil || !created || oid == ann {
			t.Errorf("same email in another tenant: %d, %v, %v", oid, created, err)
		}
		if _, err := db.GetCustomer(ctx, other, ann); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetCustomer across tenants: %v", err)
		}
		if _, _, err := db.ResolveCustomer(ctx, "no-such-tenant", Identity{Email: "x@y.z"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("ResolveCustomer for unknown tenant: %v", err)
		}

		// CustomerIDs pages through the tenant's customers in id order.
		var all []int64
		for after := int64(0); ; {
			page, err := db.CustomerIDs(ctx, tid, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1]
		}
		want := ids(labels["ann"], labels["bob"], labels["cy"])
		if len(all) != 3 || all[0] != want[0] || all[1] != want[1] || all[2] != want[2] {
			t.Errorf("CustomerIDs = %v, want %v", all, want)
		}
		if _, err := db.CustomerIDs(ctx, tid, 0, 0); err == nil {
			t.Error("CustomerIDs with limit 0 accepted")
		}
	})
}

func TestResolveCustomerConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		const n, rounds = 20, 5
		// Several rounds, each racing on a new person: later rounds run on a warm connection pool,
		// where the goroutines really collide instead of being staggered by connection setup.
		for round := range rounds {
			email, ext := fmt.Sprintf("new%d@example.com", round), fmt.Sprintf("shopify:%d", round)
			var wg sync.WaitGroup
			var createdCount atomic.Int32
			got := make([]int64, n)
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					// Half come in by email alone, half with the shop id too: all are one person.
					id := Identity{Email: email}
					if i%2 == 1 {
						id.ExternalID = ext
					}
					cid, created, err := db.ResolveCustomer(ctx, tid, id)
					got[i], errs[i] = cid, err
					if created {
						createdCount.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, goroutine %d: %v", round, i, err)
				}
				if got[i] != got[0] {
					t.Fatalf("round %d: goroutines resolved to different customers: %v", round, got)
				}
			}
			if createdCount.Load() != 1 {
				t.Errorf("round %d: created reported %d times, want 1", round, createdCount.Load())
			}
			if c := mustCustomer(t, db, tid, got[0]); c.ExternalID != ext {
				t.Errorf("round %d: external id not linked: %+v", round, c)
			}
		}
		page, err := db.CustomerIDs(ctx, tid, 0, 100)
		if err != nil || len(page) != rounds {
			t.Fatalf("tenant has customers %v (%v), want exactly %d", page, err, rounds)
		}

		// Different people at once: each gets their own row.
		var wg2 sync.WaitGroup
		for i := range n {
			wg2.Go(func() {
				if _, _, err := db.ResolveCustomer(ctx, tid, Identity{Email: string(rune('a'+i)) + "@example.com"}); err != nil {
					t.Errorf("resolve %d: %v", i, err)
				}
			})
		}
		wg2.Wait()
		if page, _ := db.CustomerIDs(ctx, tid, 0, 100); len(page) != n+rounds {
			t.Errorf("%d customers, want %d", len(page), n+rounds)
		}
	})
}
