package dashboard

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/admin"
)

// QueuesPath is where the queue monitor (asynqmon, Options.Queues) is mounted.
const QueuesPath = MountPath + "/queues"

// queues serves the queue monitor to operator sessions only: it shows and changes every tenant's
// tasks. Its pages are asynqmon's own (its scripts need their own policy, so the dashboard's
// security headers are not set); its changes (pause a queue, delete or run tasks) must come from
// this site, and the session cookie is SameSite=Strict, so other sites cannot send them.
func (d *Handler) queues(c *gin.Context) {
	se, err := d.current(c)
	if err != nil {
		c.Redirect(http.StatusSeeOther, MountPath+"/")
		c.Abort()
		return
	}
	if se.Role != admin.RoleOperator {
		jsonError(c, http.StatusForbidden, "the queue monitor is for operators: sign in with an operator token")
		return
	}
	if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead && !d.sameOrigin(c.Request) {
		jsonError(c, http.StatusForbidden, "request from another site refused")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	d.queueUI.ServeHTTP(c.Writer, c.Request)
	c.Abort()
}
