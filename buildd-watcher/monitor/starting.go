package monitor

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"buildd/buildd/home"
	"buildd/buildd/machine"
)

// Slices is how the host is shared among the build slots (max_build), as
// the Build OS monitor divides CPUs and RAM among its toolchains.
type Slices struct {
	CPUTotal int
	Slots    int
	CPUSlice int   // cores per slot, at least 1
	RAMTotal int64 // KiB
	RAMSlice int64 // KiB per slot
}

// HostSlices measures the host: the CPUs this process may use and
// MemTotal of /proc/meminfo, divided among slots.
func HostSlices(slots int) (Slices, error) {
	if slots < 1 {
		slots = 1
	}
	s := Slices{CPUTotal: runtime.NumCPU(), Slots: slots}
	s.CPUSlice = max(1, s.CPUTotal/slots)
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/meminfo: MemTotal %q: %w", v, err)
			}
			s.RAMTotal = n
			s.RAMSlice = n / int64(slots)
			return s, nil
		}
	}
	return s, fmt.Errorf("/proc/meminfo: no MemTotal")
}

// Starting mails "starting build host monitor" (as buildd-watcher
// --schedule does when it starts) and records the configuration it
// described, so that Run mails it again only when it changes.
func (m *Monitor) Starting() error {
	lock, err := home.LockFile(m.Home.Path("buildd-monitor"), home.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	st := m.loadState()
	if err := m.sendStarting(); err != nil {
		return err
	}
	st.ConfigSum = m.configSum()
	return m.saveState(st)
}

// sendStarting mails the report: the slices, the thresholds and free
// space, the schedules and the dists with their machines.
func (m *Monitor) sendStarting() error {
	body, err := m.startingBody()
	if err != nil {
		return err
	}
	m.Log.Printf("starting build host monitor")
	return m.mail("starting build host monitor", body)
}

func (m *Monitor) startingBody() (string, error) {
	s, err := HostSlices(m.Cfg.MaxBuild)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("cpu_total:      %d\n", s.CPUTotal)
	p("max_build:      %d\n", s.Slots)
	p("cpu_slice:      %d\n\n", s.CPUSlice)
	p("ram_total:      %d kB\n", s.RAMTotal)
	p("ram_slice:      %d kB\n\n", s.RAMSlice)
	p("config:         %s\n", m.Cfg.File)
	p("home:           %s\n", m.Cfg.Home)
	p("machines_dir:   %s\n", m.Cfg.MachinesDir)
	p("admin_mail:     %s\n\n", m.Cfg.AdminMail)
	for _, v := range m.volumes() {
		free, err := FreeKiB(v.Path)
		if err != nil {
			p("%s volume: %v\n", v.Name, err)
			continue
		}
		p("%-15s %s: %d KiB free (warn below %d, stop below %d)\n", v.Name+" volume:", v.Path, free, v.Warn, v.Stop)
	}
	p("\n")
	p("upload_tool:        %s (timeout %d s)\n", m.Cfg.UploadTool, m.Cfg.UploadTimeout)
	p("uploader_schedule:  %s\n", m.Cfg.UploadSched)
	p("watcher_schedule:   %s\n", m.Cfg.WatcherSched)
	p("upgrade_schedule:   %s\n\n", m.Cfg.UpgradeSched)
	machines := map[string]machine.Machine{}
	if store, err := machine.Open(m.Cfg.MachinesDir); err == nil {
		if list, err := store.List(); err == nil {
			for _, mc := range list {
				machines[mc.Name] = mc
			}
		}
	}
	for _, d := range m.Cfg.Dists {
		p("%s.built_architecture:      %s\n", d.DistName, d.BuiltArchitecture)
		p("%s.machine:                 %s", d.DistName, d.Machine)
		if mc, ok := machines[d.Machine]; ok {
			p(" (current %s, %d revisions, %d working)\n", mc.Current, len(mc.Revisions), len(mc.Working))
		} else {
			p(" (not created yet)\n")
		}
		p("%s.dupload_local_queue_dir: %s\n", d.DistName, d.DuploadLocalQueueDir)
		if d.WannaBuildSSHHost != "" {
			p("%s.wanna_build_ssh_host:    %s\n", d.DistName, d.WannaBuildSSHHost)
		}
		p("\n")
	}
	return b.String(), nil
}
