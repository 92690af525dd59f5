// Package shopify translates Shopify order webhooks into clvd's neutral order events: it verifies the
// delivery's HMAC signature and parses the Order and Refund resources Shopify sends. It knows nothing of
// HTTP routing or storage; the webhook reads the headers named here and hands the raw body over.
package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/clvd/clvd/integrations"
)

// Headers of a Shopify webhook delivery. Go's http.Header canonicalises names, so the exact case here
// does not matter to a lookup.
const (
	HeaderHmac       = "X-Shopify-Hmac-Sha256"  // base64 HMAC-SHA256 of the raw body
	HeaderTopic      = "X-Shopify-Topic"        // e.g. orders/create
	HeaderWebhookID  = "X-Shopify-Webhook-Id"   // one delivery (attempt series) of one subscription
	HeaderEventID    = "X-Shopify-Event-Id"     // the underlying event: equal across duplicate deliveries
	HeaderShopDomain = "X-Shopify-Shop-Domain"  // the shop's myshopify.com domain
	HeaderTriggered  = "X-Shopify-Triggered-At" // when Shopify fired the webhook (informational)
)

// VerifySignature checks that header is base64(HMAC-SHA256(secret, body)), the scheme Shopify documents
// for the X-Shopify-Hmac-Sha256 header. body must be the raw request body, byte for byte: any re-encoding
// of the JSON changes the digest. Every failure wraps integrations.ErrBadSignature and says which check
// failed, because "signature invalid" alone leaves an operator guessing between a wrong secret, a proxy
// that rewrote the body and a missing header.
func VerifySignature(secret []byte, body []byte, header string) error {
	// An empty key still yields a valid HMAC, one anybody can compute: refuse rather than accept forgeries.
	if len(secret) == 0 {
		return fmt.Errorf("%w: no Shopify signing secret configured", integrations.ErrBadSignature)
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return fmt.Errorf("%w: header %s is missing", integrations.ErrBadSignature, HeaderHmac)
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return fmt.Errorf("%w: header %s is not valid base64", integrations.ErrBadSignature, HeaderHmac)
	}
	if len(got) != sha256.Size {
		return fmt.Errorf("%w: header %s holds %d bytes, a SHA-256 HMAC has %d",
			integrations.ErrBadSignature, HeaderHmac, len(got), sha256.Size)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	// hmac.Equal runs in constant time, so response timing does not reveal how many bytes matched.
	if !hmac.Equal(mac.Sum(nil), got) {
		return fmt.Errorf("%w: header %s does not match the body (wrong secret, or the body was altered in transit)",
			integrations.ErrBadSignature, HeaderHmac)
	}
	return nil
}
