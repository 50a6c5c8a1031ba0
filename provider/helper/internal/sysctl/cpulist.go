package sysctl

import (
	"fmt"
	"strconv"
	"strings"
)

// canonicalCPUList parses a cpulist the way the kernel's bitmap_parselist does for CPU numbers
// ("0-3,8", "0-7:1/2" = every other CPU) and renders the set as the kernel prints it back (%*pbl: ascending ranges,
// "0-3,8"), so a value written compares equal to the value read. "all" and "N" (last CPU) are refused: they
// depend on the director's CPU count, and the kernel reads them back as numbers, which would show as drift
// forever. The empty list stops the estimation kthreads.
func canonicalCPUList(s string, max int64) (string, error) {
	if s == "" {
		return "", nil
	}
	set := make([]bool, max+1)
	for _, group := range strings.Split(s, ",") {
		if err := addCPUGroup(set, group, max); err != nil {
			return "", fmt.Errorf("cpulist %q: %w", s, err)
		}
	}
	var parts []string
	for i := 0; i < len(set); {
		if !set[i] {
			i++
			continue
		}
		j := i
		for j+1 < len(set) && set[j+1] {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(i))
		} else {
			parts = append(parts, strconv.Itoa(i)+"-"+strconv.Itoa(j))
		}
		i = j + 1
	}
	return strings.Join(parts, ","), nil
}

// addCPUGroup adds one group: "a", "a-b" or "a-b:used/size" (of every size CPUs from a, the first used).
func addCPUGroup(set []bool, group string, max int64) error {
	region, stride, hasStride := strings.Cut(group, ":")
	lo, hi, isRange := strings.Cut(region, "-")
	a, err := cpuNumber(lo, max)
	if err != nil {
		return err
	}
	b := a
	if isRange {
		if b, err = cpuNumber(hi, max); err != nil {
			return err
		}
		if b < a {
			return fmt.Errorf("range %q ends before it starts", region)
		}
	}
	used, size := int64(1), int64(1)
	if hasStride {
		if !isRange {
			return fmt.Errorf("group %q: a stride needs a range (a-b:used/size)", group)
		}
		u, z, ok := strings.Cut(stride, "/")
		if used, err = strconv.ParseInt(u, 10, 32); !ok || err != nil {
			return fmt.Errorf("group %q: stride must be used/size", group)
		}
		if size, err = strconv.ParseInt(z, 10, 32); err != nil || used < 1 || used > size {
			return fmt.Errorf("group %q: stride must be used/size with 1 <= used <= size", group)
		}
	}
	for c := a; c <= b; c += size {
		for k := c; k < c+used && k <= b; k++ {
			set[k] = true
		}
	}
	return nil
}

func cpuNumber(s string, max int64) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a CPU number (give numbers; \"all\" and \"N\" read back as numbers)", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("CPU %s is beyond %d", s, max)
	}
	return n, nil
}
