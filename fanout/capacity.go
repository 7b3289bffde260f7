package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// GridCapacity asks a grid (herd or Selenium Grid 4, through GET /status)
// how many sessions of browserName its available nodes can run at once.
func GridCapacity(ctx context.Context, grid, browserName string) (int, error) {
	// The client sends the URL's user and password, if any, as basic auth.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(grid, "/")+"/status", nil)
	if err != nil {
		return 0, err
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
