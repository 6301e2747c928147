package build

import (
	"fmt"

	"buildd/internal/config"
	"buildd/internal/machine"
)

// target is the one place where the three ways of building for an
// architecture differ. A native build and an emulated one are the same to
// the steps: both run in a machine of the architecture built for, an
// emulated machine's programs going through qemu-user by the kernel's
// binfmt_misc, unseen here. A cross build runs in a machine of the host's
// own architecture that has the built one added (`machine create
// --cross`), and apt and dpkg-buildpackage are told the architecture the
// packages are for (Debian's "host architecture"), with the cross and
// nocheck build profiles.
type target struct {
	arch  string // the architecture built for
	cross bool
	// giveBackUnmet: build-dependencies that cannot be satisfied for a
	// cross build give the package back rather than fail it.
	giveBackUnmet bool
}

func targetOf(d *config.Dist) target {
	return target{arch: d.BuiltArchitecture, cross: d.BuildMode == "cross", giveBackUnmet: d.CrossGiveBack}
}

// check says whether machine m can build for t, and how t is built on
// this host: native, emulated or cross (the summary's Build-Mode).
func (t target) check(m machine.Machine) (string, error) {
	switch {
	case t.cross && m.Cross != t.arch:
		return "", fmt.Errorf("machine %s is not a cross machine for %s (buildd machine create %s --dist %s --cross %s)", m.Name, t.arch, m.Name, m.Dist, t.arch)
	case t.cross:
		return "cross", nil
	case m.Cross != "":
		return "", fmt.Errorf("machine %s is a cross machine: set build_mode = \"cross\" to build for %s in it", m.Name, m.Cross)
	case m.Arch != "" && m.Arch != t.arch:
		return "", fmt.Errorf("machine %s is a machine of %s, not %s", m.Name, m.Arch, t.arch)
	}
	if err := machine.CheckEmulation(t.arch); err != nil {
		return "", err
	}
	if m.Emulated {
		return "emulated", nil
	}
	return "native", nil
}

// aptOptions are apt-get build-dep's options.
func (t target) aptOptions(archOnly bool) string {
	opt := ""
	if t.cross {
		opt = "--host-architecture " + t.arch + " "
	}
	if archOnly {
		opt += "--arch-only "
	}
	return opt
}

// buildOptions are dpkg-buildpackage's options beside -us -uc.
func (t target) buildOptions(archOnly bool) string {
	opt := "-B"
	if !archOnly {
		opt = "-b"
	}
	if t.cross {
		opt += " --host-arch=" + t.arch + " --build-profiles=cross,nocheck"
	}
	return opt
}

// buildOptionsEnv is DEB_BUILD_OPTIONS.
func (t target) buildOptionsEnv(parallel int) string {
	env := fmt.Sprintf("DEB_BUILD_OPTIONS=parallel=%d", parallel)
	if t.cross {
		env += " nocheck"
	}
	return env
}

// layerVariant is what a layer's key says of the build besides the
// revision and the packages.
func (t target) layerVariant(archOnly bool) string {
	v := fmt.Sprintf("arch-only %v\nhost-arch %s\n", archOnly, t.arch)
	if t.cross {
		v += "cross\n"
	}
	return v
}

// unmet is how a build ends whose build-dependencies apt cannot satisfy.
func (t target) unmet() (Status, string) {
	switch {
	case t.cross && t.giveBackUnmet:
		return GivenBack, "cannot be cross-built for " + t.arch + " (given back for a native or emulated builder)"
	case t.cross:
		return Attempted, "cannot be cross-built for " + t.arch
	}
	return Attempted, ""
}
