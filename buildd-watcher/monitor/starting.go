package monitor

import (
	"fmt"
	"runtime"
	"strings"

	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/slicing"
)

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
	// The slices buildd gives its builds (and enforces: the RAM slice is
	// each build's memory limit).
	total, err := slicing.MemTotalKiB("/proc/meminfo")
	if err != nil {
		return "", err
	}
	s, err := slicing.HostSlice(m.Cfg.MaxBuild)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("cpu_total:      %d\n", runtime.NumCPU())
	p("max_build:      %d\n", m.Cfg.MaxBuild)
	p("cpu_slice:      %d\n\n", s.CPUs)
	p("ram_total:      %d kB\n", total)
	p("ram_reserved:   %d kB (for the host)\n", slicing.ReserveKiB(total))
	p("ram_slice:      %d kB\n\n", s.RAMKiB)
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
