package node

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
)

func chromeNode(t *testing.T, maxSessions int, idle time.Duration) (*Node, string, string) {
	t.Helper()
	driver, browser := gridtest.Chrome(t)
	profiles := gridtest.ProfileDir(t)
	n, err := New(Config{
		Browsers: []Browser{{
			Stereotype:  map[string]any{"browserName": "chrome", "platformName": "linux"},
			MaxSessions: maxSessions,
			Driver:      driver,
			Binary:      browser,
		}},
		ProfileDir:  profiles,
		IdleTimeout: idle,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n)
	t.Cleanup(func() {
		srv.Close()
		_ = n.Stop(context.Background())
		gridtest.NoLeaks(t, profiles)
	})
	return n, srv.URL, profiles
}

func TestNodeScenarios(t *testing.T) {
	t.Parallel()

	n, url, profiles := chromeNode(t, 2, time.Minute)
	site := gridtest.Site(t)
	out, err := gridtest.RunScenarios(context.Background(), t, url, site)
	if err != nil {
		t.Fatalf("scenarios failed: %v\n%s", err, out)
	}
	if strings.Count(out, "ok ") != 9 {
		t.Fatalf("not every scenario ran:\n%s", out)
	}
	if ids := n.SessionIDs(); len(ids) != 0 {
		t.Fatalf("sessions left after quit: %v", ids)
	}
	gridtest.NoBrowsers(t, profiles)
}
