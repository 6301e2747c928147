package monitor

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Volume is the free space of one volume against its thresholds (KiB).
type Volume struct {
	Name  string // "build" or "machines"
	Path  string
	Free  int64
	Warn  int64
	Stop  int64
	Level string // "ok", "warn" or "stop"
}

// levels in increasing gravity.
var levels = map[string]int{"ok": 0, "warn": 1, "stop": 2}

// FreeKiB is the space available to unprivileged users on path's
// filesystem, in KiB.
func FreeKiB(path string) (int64, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(s.Bavail) * int64(s.Bsize) / 1024, nil
}

// volumes are the build area (home's build/: min_free_space) and the
// machines volume (machines_min_free_space), both warned at
// warn_free_space.
func (m *Monitor) volumes() []Volume {
	vs := []Volume{{Name: "build", Path: m.Home.BuildDir(), Warn: int64(m.Cfg.WarnFree), Stop: int64(m.Cfg.MinFreeSpace)}}
	if _, err := os.Stat(m.Cfg.MachinesDir); err == nil {
		vs = append(vs, Volume{Name: "machines", Path: m.Cfg.MachinesDir, Warn: int64(m.Cfg.WarnFree), Stop: int64(m.Cfg.MachineFree)})
	}
	return vs
}

// checkSpace measures every volume, mails each change of level (down to
// warn, down to stop, back up), and returns the hold reasons: the volumes
// below their stop threshold.
func (m *Monitor) checkSpace(st *state) ([]Volume, []string) {
	var out []Volume
	var hold []string
	for _, v := range m.volumes() {
		free, err := FreeKiB(v.Path)
		if err != nil {
			m.Log.Printf("%v", err)
			continue
		}
		v.Free = free
		switch {
		case free < v.Stop:
			v.Level = "stop"
			hold = append(hold, fmt.Sprintf("%s volume %s has %d KiB free, below the stop threshold of %d KiB", v.Name, v.Path, free, v.Stop))
		case free < v.Warn:
			v.Level = "warn"
		default:
			v.Level = "ok"
		}
		out = append(out, v)
		prev, ok := st.Space[v.Name]
		if !ok {
			prev = "ok"
		}
		st.Space[v.Name] = v.Level
		if prev == v.Level {
			continue
		}
		var subject string
		switch {
		case v.Level == "stop":
			subject = fmt.Sprintf("no space on the %s volume, holding new builds", v.Name)
		case v.Level == "warn" && levels[prev] < levels["warn"]:
			subject = fmt.Sprintf("low space on the %s volume", v.Name)
		default:
			subject = fmt.Sprintf("space on the %s volume is %s", v.Name, map[string]string{"ok": "back", "warn": "low again, above the stop threshold"}[v.Level])
		}
		body := fmt.Sprintf("%s volume: %s\nfree:           %d KiB\nwarn below:     %d KiB (warn_free_space)\nstop below:     %d KiB (%s)\n",
			v.Name, v.Path, v.Free, v.Warn, v.Stop, map[string]string{"build": "min_free_space", "machines": "machines_min_free_space"}[v.Name])
		m.Log.Printf("%s: %d KiB free", subject, v.Free)
		m.mail(subject, body)
	}
	return out, hold
}
