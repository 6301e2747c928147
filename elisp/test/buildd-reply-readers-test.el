;;; buildd-reply-readers-test.el --- buildd-reply in mu4e and notmuch  -*- lexical-binding: t; -*-

;;; Commentary:

;; `buildd-reply-mode' in the two mail readers that are not part of
;; Emacs, run for real on the fixture mails:
;;
;; mu4e (Debian's mu4e, 1.8): the fixtures are delivered into a
;; throw-away Maildir, indexed by the real `mu' (mu init / mu index with
;; their own --muhome), and the message plist `mu find --format=sexp'
;; prints is handed to `mu4e-view', the function mu4e's headers view
;; calls to show a message: it reads the file, renders it with Gnus'
;; article code in `mu4e-view-mode' and so runs `mu4e-view-mode-hook'.
;; Only the mu server process is not used (`mu find' gives the same
;; plist it would).
;;
;; notmuch (Debian's elpa-notmuch, 0.37, and the notmuch program): the
;; same Maildir is indexed by the real `notmuch new' under its own
;; NOTMUCH_CONFIG, and `notmuch-show' fetches and renders the thread
;; with `notmuch show --format=sexp' and runs `notmuch-show-hook'.
;; Nothing is constructed.
;;
;; Emacs is run with -Q, so the packages' directories are not on
;; `load-path'; they are added here from Debian's system elpa
;; directory.  Without the packages (or the mu / notmuch programs) the
;; tests are skipped, loudly.

;;; Code:

(require 'ert)
(require 'buildd-reply-test)

(defconst buildd-reply-readers-test-elpa-dirs
  '("/usr/share/emacs/site-lisp/elpa" "/usr/local/share/emacs/site-lisp/elpa")
  "Where Debian's elpa-* packages install their compiled Lisp.")

(dolist (dir buildd-reply-readers-test-elpa-dirs)
  (dolist (pkg (file-expand-wildcards (expand-file-name "*" dir)))
    (when (and (file-directory-p pkg)
               (string-match-p "/\\(?:mu4e\\|notmuch\\)-[0-9.]+\\'" pkg))
      (add-to-list 'load-path pkg))))

(defconst buildd-reply-readers-test-mu4e
  (and (require 'mu4e nil t) (executable-find "mu") t)
  "Non-nil when mu4e and the mu program are installed.")

(defconst buildd-reply-readers-test-notmuch
  (and (require 'notmuch nil t) (executable-find "notmuch") t)
  "Non-nil when notmuch.el and the notmuch program are installed.")

(defvar mu4e-view-buffer-name)
(defvar mu4e-mu-binary)
(defvar notmuch-command)
(declare-function mu4e-view "mu4e-view")
(declare-function notmuch-show "notmuch-show")

(defun buildd-reply-readers-test-need (ok what)
  "Skip the test, loudly, unless OK; WHAT names the missing reader."
  (unless ok
    (message "\n*** SKIPPED: %s is not installed (apt-get install mu4e elpa-notmuch notmuch; `make deps' does) ***\n"
             what)
    (ert-skip (format "%s is not installed" what))))

(defconst buildd-reply-readers-test-other-mail
  (concat "From: Someone <someone@example.org>\n"
          "To: buildd-admin@example.org\n"
          "Subject: lunch?\n"
          "Message-ID: <lunch.1@example.org>\n"
          "Date: Fri, 21 Nov 2025 12:00:00 +0000\n"
          "\n"
          "Shall we?\n")
  "A mail that is no buildd mail.")

(defun buildd-reply-readers-test-run (program &rest args)
  "Run PROGRAM with ARGS (120 s at most); return its output, fail unless it exits 0."
  (with-temp-buffer
    (let ((exit (apply #'call-process "timeout" nil t nil "120" program args)))
      (unless (equal exit 0)
        (error "%s %s: exit %s: %s" program (string-join args " ") exit (buffer-string)))
      (buffer-string))))

(defmacro buildd-reply-readers-test-with-maildir (var &rest body)
  "Run BODY with VAR a fresh directory holding Maildir md/ with every fixture.
Each fixture mail and the non-buildd mail are one message in md/cur/."
  (declare (indent 1) (debug t))
  `(let ((,var (make-temp-file "buildd-reply-readers" t)))
     (unwind-protect
         (let ((cur (expand-file-name "md/cur" ,var))
               (n 0))
           (dolist (sub '("md/cur" "md/new" "md/tmp"))
             (make-directory (expand-file-name sub ,var) t))
           (dolist (name (directory-files buildd-reply-test-data nil "\\.mail\\'"))
             (copy-file (expand-file-name name buildd-reply-test-data)
                        (expand-file-name (format "%d.%d.test:2,S" (cl-incf n) n) cur)))
           (let ((coding-system-for-write 'binary))
             (write-region buildd-reply-readers-test-other-mail nil
                           (expand-file-name "0.0.test:2,S" cur) nil 'quiet))
           ,@body)
       (delete-directory ,var t))))

;;;; mu4e

(defun buildd-reply-readers-test-mu-index (dir)
  "Index DIR's Maildir md/ with mu; the mu home is DIR/mu."
  (let ((home (expand-file-name "mu" dir)))
    (buildd-reply-readers-test-run "mu" "init" (concat "--muhome=" home)
                                   (concat "--maildir=" (expand-file-name "md" dir)))
    (buildd-reply-readers-test-run "mu" "index" (concat "--muhome=" home))))

(defun buildd-reply-readers-test-in-mu4e (dir message-id fn)
  "Show the mail MESSAGE-ID of DIR's mu index with `mu4e-view'; call FN there.
The buffer FN leaves current stays current."
  (let* ((out (buildd-reply-readers-test-run
               "mu" "find" (concat "--muhome=" (expand-file-name "mu" dir))
               "--format=sexp" (concat "msgid:" message-id)))
         (msg (car (read-from-string out))))
    (should (equal (plist-get msg :message-id) message-id))
    (mu4e-view msg)
    (should (eq major-mode 'mu4e-view-mode))
    (should (equal (buffer-name) mu4e-view-buffer-name))
    ;; mu4e points `gnus-summary-buffer' at a dummy " *appease-gnus*"
    ;; buffer; the mode follows Gnus' real summary buffers only.
    (should-not (buffer-local-value 'buildd-reply-mode (get-buffer gnus-summary-buffer)))
    (funcall fn)))

(ert-deftest buildd-reply-readers-test-mu4e ()
  "A buildd mail in mu4e's view turns the mode on; C-c C-o / C-c C-d answer it."
  (buildd-reply-readers-test-need buildd-reply-readers-test-mu4e "mu4e (with mu)")
  (buildd-reply-readers-test-with-maildir dir
    (buildd-reply-readers-test-mu-index dir)
    (buildd-reply-test-with-env
      (buildd-reply-readers-test-in-mu4e
       dir "lunch.1@example.org"
       (lambda ()
         (should (string-match-p "Shall we" (buffer-string)))
         (should-not buildd-reply-mode)
         (should-not (eq (key-binding (kbd "C-c C-o")) 'buildd-reply-ok)))))
    (dolist (c '(("20251121073102.1234.hello@build-amd64.example.org"
                  "log-successful.mail" "C-c C-o")
                 ("20251121080245.5678.frobnicate@build-amd64.example.org"
                  "log-failed-depwait.mail" "C-c C-d")
                 ("20251121080245.5678.frobnicate@build-amd64.example.org"
                  "log-failed-depwait.mail" "C-c C-]")
                 ("20251121110000.9.hello@build-amd64.example.org"
                  "should-build.mail" "C-c C-o")))
      (buildd-reply-readers-test-check
       (lambda (fn) (buildd-reply-readers-test-in-mu4e dir (nth 0 c) fn))
       (nth 1 c) (nth 2 c)))
    (buildd-reply-readers-test-bug-flow
     (lambda (id fn) (buildd-reply-readers-test-in-mu4e dir id fn)))))

;;;; notmuch

(defun buildd-reply-readers-test-notmuch-index (dir)
  "Index DIR's Maildir md/ with notmuch; the configuration is DIR/notmuch-config."
  (let ((config (expand-file-name "notmuch-config" dir)))
    (with-temp-file config
      (insert "[database]\npath=" (expand-file-name "md" dir) "\n"
              "[user]\nname=Buildd Admin\nprimary_email=admin@example.org\n"
              "[new]\ntags=inbox;\n"))
    (setenv "NOTMUCH_CONFIG" config)
    (buildd-reply-readers-test-run notmuch-command "new" "--quiet")))

(defun buildd-reply-readers-test-in-notmuch (message-id fn)
  "Show the thread of MESSAGE-ID with `notmuch-show'; call FN there.
The buffer FN leaves current stays current."
  (notmuch-show (concat "id:" message-id))
  (should (eq major-mode 'notmuch-show-mode))
  (funcall fn))

(ert-deftest buildd-reply-readers-test-notmuch ()
  "A buildd mail in notmuch-show turns the mode on; C-c C-o / C-c C-d answer it."
  (buildd-reply-readers-test-need buildd-reply-readers-test-notmuch "notmuch (elpa-notmuch and notmuch)")
  (let ((process-environment (copy-sequence process-environment)))
    (buildd-reply-readers-test-with-maildir dir
      (buildd-reply-readers-test-notmuch-index dir)
      (buildd-reply-test-with-env
        (buildd-reply-readers-test-in-notmuch
         "lunch.1@example.org"
         (lambda ()
           (should (string-match-p "Shall we" (buffer-string)))
           (should-not buildd-reply-mode)
           (should-not (eq (key-binding (kbd "C-c C-o")) 'buildd-reply-ok)))))
      (dolist (c '(("20251121073102.1234.hello@build-amd64.example.org"
                    "log-successful.mail" "C-c C-o")
                   ("20251121080245.5678.frobnicate@build-amd64.example.org"
                    "log-failed-depwait.mail" "C-c C-d")
                   ("20251121080245.5678.frobnicate@build-amd64.example.org"
                    "log-failed-depwait.mail" "C-c C-]")
                   ("20251121110000.9.hello@build-amd64.example.org"
                    "should-build.mail" "C-c C-o")))
        (buildd-reply-readers-test-check
         (lambda (fn) (buildd-reply-readers-test-in-notmuch (nth 0 c) fn))
         (nth 1 c) (nth 2 c)))
      (buildd-reply-readers-test-bug-flow #'buildd-reply-readers-test-in-notmuch))))

;;;; Shared check

(defun buildd-reply-readers-test-bug-flow (show)
  "`buildd-reply-test-bug-flow' in a reader.
SHOW is called with a Message-ID and the function to run in the reader's
buffer showing that mail."
  (buildd-reply-test-bug-flow
   (lambda (fn) (funcall show "20251121080245.5678.frobnicate@build-amd64.example.org" fn))
   (lambda (fn) (funcall show "handler.1234567.B.176371650212345.ack@bugs.debian.org" fn))))

(defun buildd-reply-readers-test-check (show name keys)
  "SHOW fixture NAME in a reader, check the mode is on, type KEYS, check the reply.
SHOW is called with the function to run in the reader's buffer."
  (let* ((info (buildd-reply--parse-text (buildd-reply-test-fixture name)))
         (subject-info (buildd-reply--subject-info (plist-get info :subject)))
         (pkgv (buildd-reply--names-line (nth 1 subject-info) (nth 2 subject-info) (nth 3 subject-info)))
         (signed (cond
                  ((string-prefix-p "should-build" name) (concat "build\n" pkgv "\n"))
                  ((equal keys "C-c C-o") (buildd-reply-test-expected-changes name))
                  ((equal keys "C-c C-]") (concat "upload-rem\n" pkgv "\n"))
                  (t (concat "dep-wait libfoo-dev (>= 1.2), libbar-dev, libbaz-dev\n"
                             pkgv "\n")))))
    (buildd-reply-test-with-env
      (funcall show (lambda ()
                      (should buildd-reply-mode)
                      (should (eq (key-binding (kbd "C-c C-o")) 'buildd-reply-ok))
                      (execute-kbd-macro (kbd keys))))
      (let ((sent (buildd-reply-test-sent)))
        (should (= (length sent) 1))
        (should (equal (buildd-reply-test-header (car sent) "to")
                       (or (plist-get info :reply-to) (plist-get info :from))))
        (buildd-reply-test-check-reply (car sent) (plist-get info :subject)
                                       (plist-get info :message-id) signed)))))

(provide 'buildd-reply-readers-test)

;;; buildd-reply-readers-test.el ends here
