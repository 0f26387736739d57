package demo

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/zmqauth/zmqauth/internal/promtext"
)

// Metric reads a sidecar's Prometheus /metrics at admin (host:port) and
// returns the sum of the samples of name whose labels include every one
// in labels; 0 when there is none.
func Metric(ctx context.Context, admin, name string, labels map[string]string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("demo: metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("demo: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("demo: metrics at %s: %s", admin, resp.Status)
	}
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("demo: %s: %w", admin, err)
	}
	return promtext.Sum(samples, name, labels), nil
}
