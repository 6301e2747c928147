package monitor

import (
	"os"
	"strings"
	"testing"

	"buildd/internal/machine"
)

// TestEmulationMail: a host building bookworm for s390x through qemu-user.
// Its binfmt_misc entry is unregistered (the real one, in the kernel: no
// other test uses s390x), then registered again: one mail when it is gone,
// none while it stays gone, one when it is back.
func TestEmulationMail(t *testing.T) {
	const conf = "/usr/lib/binfmt.d/qemu-s390x.conf"
	entry := machine.BinfmtDir + "/qemu-s390x"
	if os.Geteuid() != 0 {
		t.Skip("!!!!! SKIPPED: registering binfmt_misc entries needs root !!!!!")
	}
	if _, err := os.Stat(machine.BinfmtDir + "/register"); err != nil {
		t.Skipf("!!!!! SKIPPED: binfmt_misc is not mounted (make deps mounts it): %v !!!!!", err)
	}
	line, err := os.ReadFile(conf)
	if err != nil {
		t.Skipf("!!!!! SKIPPED: %v (make deps installs qemu-user-static) !!!!!", err)
	}
	register := func() {
		if _, err := os.Stat(entry); err == nil {
			return
		}
		if err := os.WriteFile(machine.BinfmtDir+"/register", line, 0); err != nil {
			t.Fatal(err)
		}
	}
	unregister := func() {
		if _, err := os.Stat(entry); err != nil {
			return
		}
		if err := os.WriteFile(entry, []byte("-1"), 0); err != nil {
			t.Fatal(err)
		}
	}
	_, registered := os.Stat(entry)
	t.Cleanup(func() {
		if registered == nil {
			register()
		} else {
			unregister()
		}
	})
	h, m := newMonitor(t, "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"s390x\"\n")
	steps := []struct {
		do      func()
		missing bool
		mail    string
	}{
		{register, false, ""},
		{unregister, true, "qemu-user emulation of s390x is gone"},
		{unregister, true, ""},
		{register, false, "qemu-user emulation of s390x is back"},
	}
	seen := 0
	for i, s := range steps {
		s.do()
		r := runMonitor(t, m)
		if _, missing := r.Emulation["s390x"]; missing != s.missing {
			t.Errorf("step %d: emulation %v", i, r.Emulation)
		}
		mails := h.MailsAbout(t, "qemu-user emulation")
		if s.mail != "" {
			seen++
		}
		if len(mails) != seen || s.mail != "" && !strings.Contains(mails[len(mails)-1].Subject, s.mail) {
			t.Fatalf("step %d: mails %+v", i, mails)
		}
		if s.missing && s.mail != "" && !strings.Contains(mails[len(mails)-1].Body, "apt-get install qemu-user-static") {
			t.Errorf("step %d: the mail does not say what to do:\n%s", i, mails[len(mails)-1].Body)
		}
	}
}
