//go:build cgo

package gpu

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over NVML.
type Collector struct {
	lib nvml.Interface

	mu sync.Mutex // NVML calls are thread-safe, but a scrape should see one consistent pass

	util, memUsed, memTotal *prometheus.Desc
}

// Open loads NVML and returns a Collector, or nil and the reason when the
// machine has no usable NVIDIA driver.
func Open() (*Collector, error) {
	lib := nvml.New()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML not available: %s", lib.ErrorString(ret))
	}
	labels := []string{"gpu", "uuid", "name"}
	return &Collector{
		lib:      lib,
		util:     prometheus.NewDesc("herd_gpu_utilization_ratio", "Fraction of the last sample period the GPU was busy (NVML).", labels, nil),
		memUsed:  prometheus.NewDesc("herd_gpu_memory_used_bytes", "GPU memory in use (NVML).", labels, nil),
		memTotal: prometheus.NewDesc("herd_gpu_memory_total_bytes", "GPU memory in all (NVML).", labels, nil),
	}, nil
}

// Close unloads NVML.
func (c *Collector) Close() { _ = c.lib.Shutdown() }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.util
	ch <- c.memUsed
	ch <- c.memTotal
}

// Collect implements prometheus.Collector. A device that fails to answer is
// left out of this scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ret := c.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return
	}
	for i := range n {
		dev, ret := c.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue
		}
		uuid, _ := dev.GetUUID()
		name, _ := dev.GetName()
		labels := []string{fmt.Sprint(i), uuid, name}
		if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			ch <- prometheus.MustNewConstMetric(c.util, prometheus.GaugeValue, float64(u.Gpu)/100, labels...)
		}
		if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			ch <- prometheus.MustNewConstMetric(c.memUsed, prometheus.GaugeValue, float64(m.Used), labels...)
			ch <- prometheus.MustNewConstMetric(c.memTotal, prometheus.GaugeValue, float64(m.Total), labels...)
		}
	}
}
