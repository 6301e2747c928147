package wannabuild

// Temporary: keeps go mod tidy from dropping modules the packages being
// written in parallel will import. Deleted once they do. (Moved from
// zz_deps_anchor.go into a test file so that the wanna-build binary does
// not link and initialise OpenPGP, cron and the mail packages on every
// call.)
import (
	_ "github.com/ProtonMail/go-crypto/openpgp"
	_ "github.com/emersion/go-message"
	_ "github.com/emersion/go-smtp"
	_ "github.com/robfig/cron/v3"
	_ "go.etcd.io/bbolt"
)
