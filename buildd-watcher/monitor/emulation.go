package monitor

import (
	"fmt"
	"sort"

	"buildd/internal/machine"
)

// checkEmulation checks, for each architecture the dists build natively
// that this host runs through qemu-user, that its binfmt_misc entry is
// there (machine.CheckEmulation), and mails the admin when one is gone,
// once until it changes, and when it is back. It returns the problems, by
// architecture, now.
func (m *Monitor) checkEmulation(st *state) map[string]string {
	now := map[string]string{}
	for _, d := range m.Cfg.Dists {
		if d.BuildMode == "cross" {
			continue
		}
		if emu, err := machine.Emulated(d.BuiltArchitecture); err != nil || !emu {
			continue
		}
		if err := machine.CheckEmulation(d.BuiltArchitecture); err != nil {
			now[d.BuiltArchitecture] = err.Error()
		}
	}
	archs := make([]string, 0, len(now)+len(st.Emulation))
	for a := range now {
		archs = append(archs, a)
	}
	for a := range st.Emulation {
		if _, ok := now[a]; !ok {
			archs = append(archs, a)
		}
	}
	sort.Strings(archs)
	for _, a := range archs {
		was, is := st.Emulation[a], now[a]
		switch {
		case is == was:
		case is == "":
			if m.mail("qemu-user emulation of "+a+" is back", fmt.Sprintf("Builds for %s can run again on this host.\n", a)) == nil {
				delete(st.Emulation, a)
			}
		default:
			body := fmt.Sprintf("Builds for %s cannot run on this host: each is given back.\n\n%s\n", a, is)
			if m.mail("qemu-user emulation of "+a+" is gone", body) == nil {
				st.Emulation[a] = is
			}
		}
	}
	return now
}
