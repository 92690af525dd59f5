// Package safehttp makes outbound HTTP to addresses taken from tenants (helpdesk base URLs, later
// outreach webhooks) safe against server-side request forgery: https only, and no connection to
// loopback, private, link-local or otherwise internal addresses. The address check runs when the
// connection is made, on the IP actually dialled, so DNS rebinding cannot get around it.
// Local trials and tests opt out with CLVD_ALLOW_LOCAL_TARGETS=true.
package safehttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenTarget marks a URL or address clvd refuses to call.
var ErrForbiddenTarget = errors.New("forbidden outbound target")

// CheckURL validates a tenant-supplied base URL before it is stored: absolute, https (http only when
// allowLocal), no credentials, query or fragment, and a host that is not a literal internal address
// (names are checked again at connect time).
func CheckURL(raw string, allowLocal bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbiddenTarget, err)
	}
	switch {
	case u.Scheme != "https" && !(allowLocal && u.Scheme == "http"):
		return nil, fmt.Errorf("%w: %q must use https (http and local addresses need CLVD_ALLOW_LOCAL_TARGETS=true)", ErrForbiddenTarget, raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: %q has no host", ErrForbiddenTarget, raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w: %q must not carry credentials, a query or a fragment", ErrForbiddenTarget, raw)
	}
	host := u.Hostname()
	if !allowLocal {
		if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
			return nil, fmt.Errorf("%w: %q is a local address (set CLVD_ALLOW_LOCAL_TARGETS=true for local trials)", ErrForbiddenTarget, raw)
		}
		if ip, err := netip.ParseAddr(host); err == nil && Internal(ip) {
			return nil, fmt.Errorf("%w: %q is a loopback, private or link-local address (set CLVD_ALLOW_LOCAL_TARGETS=true for local trials)", ErrForbiddenTarget, raw)
		}
	}
	return u, nil
}

// CheckBaseURL is CheckURL for an account's base URL (a helpdesk's https://acme.zendesk.com): API
// clients add the path themselves, so a path here is a mistake (e.g. a pasted dashboard URL).
func CheckBaseURL(raw string, allowLocal bool) (*url.URL, error) {
	u, err := CheckURL(raw, allowLocal)
	if err != nil {
		return nil, err
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w: %q must be the account's base URL, without a path (like https://acme.zendesk.com)", ErrForbiddenTarget, raw)
	}
	return u, nil
}

// Internal reports whether ip is not a public unicast address.
func Internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() ||
		cgnat.Contains(ip) || benchmarking.Contains(ip) || reserved.Contains(ip)
}

var (
	cgnat        = netip.MustParsePrefix("100.64.0.0/10")
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")
	reserved     = netip.MustParsePrefix("240.0.0.0/4")
)

// NewClient returns an HTTP client whose every connection is checked with Internal unless allowLocal.
func NewClient(allowLocal bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowLocal {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrForbiddenTarget, address, err)
			}
			if Internal(ap.Addr()) {
				return fmt.Errorf("%w: %s is a loopback, private or link-local address", ErrForbiddenTarget, ap.Addr())
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us and bypass the address check
		DialContext:           func(ctx context.Context, n, a string) (net.Conn, error) { return dialer.DialContext(ctx, n, a) },
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if req.URL.Scheme != "https" && !allowLocal {
				return fmt.Errorf("%w: redirect to non-https %s", ErrForbiddenTarget, req.URL.Redacted())
			}
			return nil
		},
	}
}
