package watch

import (
	"errors"
	"time"
)

// PruneReplies forgets what buildd-mail no longer needs to check admins'
// replies: the sent-mails records of mails sent more than reply_window days
// ago and the mail-signatures lines of signatures made more than
// reply_window days ago. Both files are rewritten under the locks their
// writers (buildd, buildd-mail) append under. It is safe: buildd-mail
// refuses a reply to a mail older than the window, a reply to a forgotten
// mail is refused as answering no known mail, and a forgotten signature is
// older than every mail it could still answer, so it is refused as made
// before that mail.
func (w *Watcher) PruneReplies(now time.Time) (sent, sigs int, err error) {
	cutoff := now.Add(-time.Duration(w.Cfg.ReplyWindow) * day)
	sent, serr := w.Home.Sent().Prune(cutoff)
	sigs, merr := w.Home.PruneSignatures(cutoff)
	if sent+sigs > 0 {
		w.Log.Printf("reply_window %d days: forgot %d sent mail(s) and %d signature(s) older than %s",
			w.Cfg.ReplyWindow, sent, sigs, cutoff.UTC().Format(time.RFC3339))
	}
	return sent, sigs, errors.Join(serr, merr)
}
