package admin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token claims and their checks.
const (
	Issuer   = "clvd"       // iss of every admin token
	Audience = "clvd-admin" // aud of every admin token

	RoleAdmin    = "admin"    // manages one tenant (claim "tenant")
	RoleOperator = "operator" // runs the installation: every tenant, and the tenant list itself

	// Leeway is the clock skew tolerated on exp and iat.
	Leeway = 30 * time.Second
	// MaxTTL is the longest lifetime IssueToken gives a token.
	MaxTTL = 365 * 24 * time.Hour
	// MinKeyBytes is the shortest signing key accepted (HS256 wants at least the hash size).
	MinKeyBytes = 32

	// KeyEnv names the environment variable holding the signing key; KeyFile is the file in the
	// data folder used (and created) when it is unset.
	KeyEnv  = "CLVD_JWT_KEY"
	KeyFile = "jwt.key"
)

// Claims are the claims of an admin token.
type Claims struct {
	Tenant string `json:"tenant,omitempty"` // the tenant an admin manages; empty for operators
	Role   string `json:"role"`             // RoleAdmin or RoleOperator
	jwt.RegisteredClaims
}

// checkRole validates the role and tenant combination of a token.
func checkRole(role, tenant string) error {
	switch role {
	case RoleAdmin:
		if tenant == "" {
			return errors.New("an admin token needs a tenant")
		}
	case RoleOperator:
		if tenant != "" {
			return errors.New("an operator token is for every tenant: give no tenant")
		}
	default:
		return fmt.Errorf("role %q: want %s or %s", role, RoleAdmin, RoleOperator)
	}
	return nil
}

// ParseKey reads a signing key written as hex or base64 (standard or URL alphabet, padded or not)
// of at least MinKeyBytes bytes. Hex is tried first.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var k []byte
	if b, err := hex.DecodeString(s); err == nil {
		k = b
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				k = b
				break
			}
		}
	}
	if k == nil {
		return nil, errors.New("not hex or base64")
	}
	if len(k) < MinKeyBytes {
		return nil, fmt.Errorf("%d bytes, want at least %d", len(k), MinKeyBytes)
	}
	return k, nil
}

// LoadKey returns the key that signs admin tokens: CLVD_JWT_KEY (hex or base64, at least 32 bytes)
// when set, else the key in dataDir/jwt.key, which is created with 32 random bytes (hex, mode 0600)
// on first use. Every process that issues or checks tokens must get the same key: set CLVD_JWT_KEY
// when they do not share a data folder.
func LoadKey(dataDir string, getenv func(string) string) ([]byte, error) {
	if v := strings.TrimSpace(getenv(KeyEnv)); v != "" {
		k, err := ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyEnv, err)
		}
		return k, nil
	}
	if dataDir == "" {
		return nil, fmt.Errorf("%s is not set and there is no data folder to keep %s in", KeyEnv, KeyFile)
	}
	path := filepath.Join(dataDir, KeyFile)
	for attempt := 0; ; attempt++ {
		raw, err := os.ReadFile(path)
		if err == nil {
			k, err := ParseKey(string(raw))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return k, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if attempt > 0 {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if err := createKeyFile(dataDir, path); err != nil {
			return nil, err
		}
		// Read back what is there now: ours, or the key of a process that won the race.
	}
}

// createKeyFile writes a fresh key to a temporary file and links it into place, so that no process
// ever reads a partly written key; if another process linked its key first, that one stays.
func createKeyFile(dataDir, path string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating the data folder %s: %w", dataDir, err)
	}
	k := make([]byte, MinKeyBytes)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("generating the token signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, ".jwt.key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}

// IssueToken signs an admin token (HS256) for role — RoleAdmin with its tenant, or RoleOperator with
// none — valid for ttl (more than 0, at most MaxTTL) from now, with a random jti.
func IssueToken(key []byte, tenant, role string, ttl time.Duration, now time.Time) (string, error) {
	if len(key) < MinKeyBytes {
		return "", fmt.Errorf("issue token: key of %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	if err := checkRole(role, tenant); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("issue token: lifetime %s: want more than 0 and at most %s", ttl, MaxTTL)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	claims := Claims{Tenant: tenant, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    Issuer,
		Audience:  jwt.ClaimStrings{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        hex.EncodeToString(jti),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}

// verifier checks admin tokens.
type verifier struct {
	key    []byte
	parser *jwt.Parser
}

func newVerifier(key []byte, now func() time.Time) *verifier {
	return &verifier{key: key, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
	)}
}

// verify returns the token's claims, or an error saying why it is not acceptable.
func (v *verifier) verify(token string) (*Claims, error) {
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods has already refused every other alg, "none" included; this is the
		// belt to its braces.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
		}
		return v.key, nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case c.IssuedAt == nil:
		return nil, errors.New("token has no iat")
	case c.ID == "":
		return nil, errors.New("token has no jti")
	}
	// The role and tenant are checked by the caller: an authentic token with a role that may do
	// nothing is forbidden (403), not unauthenticated.
	return &c, nil
}
