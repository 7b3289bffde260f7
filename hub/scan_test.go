package hub

import "fmt"

// fmtSscan reads "done <i> <seconds>" lines from parallel.py.
func fmtSscan(line string, i *int, waited *float64) (int, error) {
	return fmt.Sscanf(line, "done %d %f", i, waited)
}
