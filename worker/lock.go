package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// locker takes short leases in Redis, so work that must not overlap (two tag pushes for one customer,
// two reconcilers) does not, whatever the number of worker processes. A nil locker grants every lease:
// a single process with one Redis connection needs none in tests.
type locker struct{ rc redis.UniversalClient }

// releaseScript deletes the lease only if it is still ours (it may have expired and been taken).
var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// acquire takes the lease key for ttl. ok=false means someone else holds it. release gives it back
// early; a lease never released (a crashed worker) expires after ttl.
func (l *locker) acquire(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error) {
	if l == nil || l.rc == nil {
		return func() {}, true, nil
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	ok, err = l.rc.SetNX(ctx, "clvd:lease:"+key, token, ttl).Result()
	if err != nil || !ok {
		return nil, false, err
	}
	return func() {
		_ = releaseScript.Run(context.WithoutCancel(ctx), l.rc, []string{"clvd:lease:" + key}, token).Err()
	}, true, nil
}
