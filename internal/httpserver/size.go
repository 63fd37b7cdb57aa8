package httpserver

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units ParseSize accepts, in bytes.
var sizeUnits = map[string]int64{
	"B":   1,
	"kB":  1000,
	"MB":  1000 * 1000,
	"GB":  1000 * 1000 * 1000,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
}

// ParseSize parses a positive size in bytes (API_MAX_BODY): plain bytes
// ("1048576"), or a whole number with a unit: B, kB, MB, GB (powers of
// 1000) or KiB, MiB, GiB (powers of 1024), as in "10MiB" or "10 MiB".
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("invalid size %q: want bytes, or a whole number with a unit (B, kB, MB, GB, KiB, MiB, GiB) such as 10MiB", s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimPrefix(s[i:], " ")
	if num == "" {
		return 0, bad
	}
	mult := int64(1)
	if unit != "" {
		m, ok := sizeUnits[unit]
		if !ok {
			return 0, bad
		}
		mult = m
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid size %q: must be positive", s)
	}
	return n * mult, nil
}
