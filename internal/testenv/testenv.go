// Package testenv gives tests the real components they need (Postgres, an
// interpreter), starts the processes they drive, and decides what happens
// when a component is missing: a skip on a developer's machine, a failure
// where HERD_TEST_REQUIRE_ALL=1 (set by CI).
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPostgresURL is the test database on herd's development machines.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Missing skips the test, or fails it when every component is required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("HERD_TEST_REQUIRE_ALL") == "1" {
		t.Fatalf("missing component (HERD_TEST_REQUIRE_ALL=1): %s", msg)
	}
	t.Skipf("missing component: %s", msg)
}

// Command returns the path of an executable, or calls Missing.
func Command(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not on PATH", name)
	}
	return p
}

// DebianPython returns Debian's interpreter, /usr/bin/python3, after
// checking it can import module (the first python3 on PATH may be another
// build without Debian's packages), or calls Missing.
func DebianPython(t testing.TB, module, pkg string) string {
	t.Helper()
	const debian = "/usr/bin/python3"
	if err := exec.Command(debian, "-c", "import "+module).Run(); err != nil {
		Missing(t, "%s cannot import %s (Debian package %s): %v", debian, module, pkg, err)
	}
	return debian
}

// PostgresURL returns HERD_TEST_DATABASE_URL or the default.
func PostgresURL() string {
	if u := os.Getenv("HERD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// PostgresSchema creates a fresh schema for the test, dropped afterwards,
// and returns a connection URL whose search_path selects it, so parallel
// tests never see each other's tables.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := PostgresURL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Missing(t, "Postgres at %s: %v", base, err)
	}
	defer conn.Close(context.Background())
	schema := fmt.Sprintf("herd_test_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// PostgresPool returns a pool on a fresh schema (see PostgresSchema).
func PostgresPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
