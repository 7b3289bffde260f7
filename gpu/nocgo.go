//go:build !cgo

package gpu

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector is empty in a build without cgo: NVML is reached through cgo.
type Collector struct{}

// Open reports that this build has no GPU metrics.
func Open() (*Collector, error) {
	return nil, errors.New("GPU metrics need a build with cgo (CGO_ENABLED=1)")
}

// Close does nothing.
func (c *Collector) Close() {}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(chan<- prometheus.Metric) {}
