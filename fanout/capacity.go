package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// GridCapacity asks a grid (herd or Selenium Grid 4, through GET /status)
// how many sessions of browserName its available nodes can run at once.
func GridCapacity(ctx context.Context, grid, browserName string) (int, error) {
	u, err := url.Parse(strings.TrimSuffix(grid, "/") + "/status")
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	if u.User != nil {
		password, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /status answered %s", resp.Status)
	}
	var status struct {
		Value struct {
			Nodes []struct {
				Availability string
				Slots        []struct {
					Stereotype map[string]any
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		return 0, fmt.Errorf("GET /status: %w", err)
	}
	n := 0
	for _, node := range status.Value.Nodes {
		if node.Availability != "UP" {
			continue
		}
		for _, s := range node.Slots {
			if name, _ := s.Stereotype["browserName"].(string); name == "" || strings.EqualFold(name, browserName) {
				n++
			}
		}
	}
	return n, nil
}
