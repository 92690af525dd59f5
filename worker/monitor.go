package worker

import (
	"net/http"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
)

// redisConn hands asynqmon the service's own Redis connection instead of the address of one, so the
// monitor works with the in-process Redis, Sentinel and Cluster alike.
type redisConn struct{ rc redis.UniversalClient }

func (r redisConn) MakeRedisClient() any { return r.rc }

// QueueMonitor is asynq's web UI (asynqmon) over the queues, to be served at rootPath behind an
// operator's authentication: it shows every tenant's tasks and can pause queues, run, archive or
// delete tasks.
func QueueMonitor(rc redis.UniversalClient, rootPath string) http.Handler {
	return asynqmon.New(asynqmon.Options{RootPath: rootPath, RedisConnOpt: redisConn{rc}})
}
