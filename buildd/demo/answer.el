;;; answer.el --- answer one buildd mail in batch, as an admin would  -*- lexical-binding: t; -*-

;; Used by the demo: emacs --batch -Q -l buildd-reply.el -l answer.el
;;   --eval '(buildd-demo-answer "MAIL" "COMMAND" "OUT" "REASON")'
;; opens MAIL (a log mail from the outbox), turns on buildd-reply-mode, runs
;; the reply COMMAND (ok, fail, dep-wait, ...) exactly as the key would, and
;; sends the signed reply the way a user's Emacs sends mail: through
;; `message-send-mail-function', here one that writes the mail to OUT (as
;; sendmail would receive it) for the demo to pipe into buildd-mail.

(require 'message)
(require 'buildd-reply)

(defun buildd-demo--write-mail (out)
  "Return a `message-send-mail-function' that writes the mail to OUT."
  (lambda ()
    (let ((coding-system-for-write 'utf-8-unix))
      (save-excursion
        (goto-char (point-min))
        (when (re-search-forward
               (concat "^" (regexp-quote mail-header-separator) "\n") nil t)
          (replace-match "\n")))
      (write-region (point-min) (point-max) out nil 'silent))))

(defun buildd-demo-answer (mail command out &optional reason)
  "Answer MAIL with buildd-reply COMMAND, writing the sent reply to OUT.
REASON is typed as the reason of a fail reply."
  (setq epg-pinentry-mode 'loopback
        user-mail-address "admin@demo.example.org"
        user-full-name "Demo Admin"
        message-send-mail-function (buildd-demo--write-mail out)
        buildd-reply-send-immediately t)
  (with-current-buffer (find-file-noselect mail)
    (buildd-reply-mode 1)
    (funcall (intern (concat "buildd-reply-" command)))
    (when (and (derived-mode-p 'message-mode) (not (file-exists-p out)))
      (when reason (insert reason))
      (message-send-and-exit)))
  (unless (file-exists-p out)
    (error "buildd-demo: %s on %s sent nothing" command mail)))

;;; answer.el ends here
