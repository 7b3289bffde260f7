package gpu

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// On a machine without an NVIDIA driver Open refuses cleanly; with one (a
// GPU machine, HERD_TEST_GPU=1) every device reports utilisation and memory.
func TestOpen(t *testing.T) {
	c, err := Open()
	if os.Getenv("HERD_TEST_GPU") != "1" {
		if err == nil {
			c.Close()
			t.Skip("this machine has NVML; run with HERD_TEST_GPU=1 to check the metrics")
		}
		if c != nil {
			t.Fatal("Open returned a collector with its error")
		}
		return
	}
	if err != nil {
		t.Fatalf("HERD_TEST_GPU=1 but %v", err)
	}
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	n, err := testutil.GatherAndCount(reg, "herd_gpu_utilization_ratio", "herd_gpu_memory_used_bytes", "herd_gpu_memory_total_bytes")
	if err != nil || n == 0 || n%3 != 0 {
		t.Fatalf("gathered %d GPU metrics (%v), want three per device", n, err)
	}
}
