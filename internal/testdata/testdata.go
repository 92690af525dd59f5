// Package testdata finds the shared data sets tests use (the CDNOW purchase data, sample payloads),
// which live in the workspace's shared/ folder beside the repository, not in it.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// CDNOWDir returns the CDNOW data folder: $CLVD_CDNOW_DIR, else shared/data/cdnow in the working
// directory, an ancestor, or beside one. Missing data skips the test locally and fails it in CI
// (CI=true), where the data must be present.
func CDNOWDir(tb testing.TB) string {
	tb.Helper()
	return find(tb, "CLVD_CDNOW_DIR", filepath.Join("shared", "data", "cdnow"), "CDNOW_sample.txt")
}

// PayloadsDir returns the sample payloads folder: $CLVD_PAYLOADS_DIR, else shared/data/payloads,
// found and handled as CDNOWDir does.
func PayloadsDir(tb testing.TB) string {
	tb.Helper()
	return find(tb, "CLVD_PAYLOADS_DIR", filepath.Join("shared", "data", "payloads"), "shopify-order.json")
}

func find(tb testing.TB, envVar, rel, marker string) string {
	tb.Helper()
	if d := os.Getenv(envVar); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		for _, c := range []string{filepath.Join(dir, rel), filepath.Join(filepath.Dir(dir), rel)} {
			if st, err := os.Stat(filepath.Join(c, marker)); err == nil && !st.IsDir() {
				return c
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not found: set %s or check out shared/ beside the repository", rel, envVar)
	}
	tb.Skipf("%s not found (set %s); skipping", rel, envVar)
	return ""
}
