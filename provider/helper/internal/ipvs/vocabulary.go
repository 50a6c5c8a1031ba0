package ipvs

import (
	"sort"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// SchedFlags are the scheduler flag names the protocol accepts (SchedFlagsFromNames).
var SchedFlags = []string{"sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3"}

// Vocabulary is every name the protocol accepts for an enum-like field, and the defaults of a new entry.
// `ipvs-helper names` prints it, so the provider's tables are tested against it instead of trusted to agree.
type Vocabulary struct {
	Schedulers      []string          `json:"schedulers"`
	SchedulerFlags  []string          `json:"schedulerFlags"`
	Forwarding      []string          `json:"forwarding"`
	TunnelTypes     []string          `json:"tunnelTypes"`
	TunnelChecksums []string          `json:"tunnelChecksums"`
	Defaults        map[string]string `json:"defaults"`
	// Numbers are the number fields of requests with their ranges and defaults (ipvs/fields.go).
	Numbers []Range `json:"numbers"`
	// Sysctls are the settings ensureSettings takes, with their ranges (internal/sysctl).
	Sysctls []sysctl.Setting `json:"sysctls"`
}

// Names returns the vocabulary, each list in a stable order.
func Names() Vocabulary {
	scheds := make([]string, 0, len(Schedulers))
	for s := range Schedulers {
		scheds = append(scheds, s)
	}
	sort.Strings(scheds)
	return Vocabulary{
		Schedulers:      scheds,
		SchedulerFlags:  append([]string(nil), SchedFlags...),
		Forwarding:      Forwardings.Words(), // local and bypass are only read back
		TunnelTypes:     TunnelTypes.Words(),
		TunnelChecksums: TunnelChecksums.Words(),
		Defaults:        map[string]string{"scheduler": DefaultScheduler},
		Numbers:         Ranges,
		Sysctls:         sysctl.All(),
	}
}
