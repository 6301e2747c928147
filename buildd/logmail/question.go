package logmail

import (
	"fmt"
	"strings"

	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/mailer"
)

// QuestionSubject is the subject of the "Should I build" question: the
// classic one with the architecture, as the log mail's names it: "Should
// I build PKG_VERSION on ARCH (dist=DIST)?".
func QuestionSubject(pkgv, arch, dist string) string {
	return fmt.Sprintf("Should I build %s on %s (dist=%s)?", pkgv, arch, dist)
}

// Question composes the "Should I build" mail to the admin about pkgv in
// d, whose previous version failed with failText (the queue's info on it).
func Question(c *config.Config, d *config.Dist, pkgv, failText string) *mailer.Message {
	return &mailer.Message{
		From:    c.MailFrom,
		To:      splitAddrs(c.AdminMail),
		Subject: QuestionSubject(pkgv, d.BuiltArchitecture, d.DistName),
		Header: map[string]string{
			"X-Buildd-Package": pkgv,
			"X-Buildd-Dist":    d.DistName,
			"X-Buildd-Arch":    d.BuiltArchitecture,
		},
		Body: fmt.Sprintf("The package %s failed to build in a previous version. The fail\n"+
			"messages are:\n\n%s\n\n"+
			"Should buildd try to build the new version, or should it fail with the\n"+
			"same messages again.? Please answer with 'build' (or 'ok'), or 'fail'\n"+
			"(or 'not-for-us', 'giveback').\n", debversion.SplitPkgVersion(pkgv).Name, strings.TrimRight(failText, "\n")),
	}
}
