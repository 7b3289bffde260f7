// Package gpu exports the machine's NVIDIA GPUs as Prometheus metrics —
// utilisation and memory per device, read through NVML at scrape time — for
// autoscalers that size GPU fleets.
//
// NVML is loaded at run time (libnvidia-ml.so, through go-nvml): on a
// machine without the driver Open returns nil and herd runs without GPU
// metrics; nothing else changes.
//
// A build without cgo (CGO_ENABLED=0) has no GPU metrics: Open says so.
package gpu
