;;; buildd-reply-test.el --- ERT tests of buildd-reply.el  -*- lexical-binding: t; -*-

;;; Commentary:

;; Real Emacs, real GnuPG: a throw-away GNUPGHOME with a key made here
;; (empty passphrase, loopback pinentry), mail readers run on the
;; fixture mails in test/data/, and mail sent through
;; `message-send-mail-function' set to a function that writes each mail
;; to a file, as a user's sending function would hand it to the MTA.
;; Every signed reply is checked with `gpg --verify'.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'buildd-reply)
(require 'gnus-art)
(require 'rmail)

(defconst buildd-reply-test-dir
  (file-name-directory (or load-file-name buffer-file-name))
  "The directory of this file.")

(defconst buildd-reply-test-data (expand-file-name "data" buildd-reply-test-dir)
  "The fixture mails.")

(defvar buildd-reply-test-gnupghome nil "The throw-away GnuPG home.")
(defvar buildd-reply-test-fingerprint nil "Fingerprint of the test key.")
(defvar buildd-reply-test-outbox nil "Where the sending function writes mails.")

(defun buildd-reply-test-gpg (&rest args)
  "Run gpg with ARGS in the test home (60 s at most); return (EXIT . OUTPUT)."
  (with-temp-buffer
    (let ((process-environment (cons (concat "GNUPGHOME=" buildd-reply-test-gnupghome)
                                     process-environment)))
      (cons (apply #'call-process "timeout" nil t nil "60" "gpg" "--batch" args)
            (buffer-string)))))

(defun buildd-reply-test-cleanup ()
  "Stop the test's gpg-agent and delete its home."
  (when (and buildd-reply-test-gnupghome (file-directory-p buildd-reply-test-gnupghome))
    (let ((process-environment (cons (concat "GNUPGHOME=" buildd-reply-test-gnupghome)
                                     process-environment)))
      (call-process "timeout" nil nil nil "30" "gpgconf" "--kill" "gpg-agent"))
    (delete-directory buildd-reply-test-gnupghome t)))

(defun buildd-reply-test-setup ()
  "Make the GnuPG home and key once; point EasyPG at them."
  (unless buildd-reply-test-gnupghome
    (setq buildd-reply-test-gnupghome (make-temp-file "buildd-reply-gnupg" t))
    (set-file-modes buildd-reply-test-gnupghome #o700)
    (add-hook 'kill-emacs-hook #'buildd-reply-test-cleanup)
    (let ((r (buildd-reply-test-gpg "--pinentry-mode" "loopback" "--passphrase" ""
                                    "--quick-gen-key" "Buildd Admin <admin@example.org>"
                                    "default" "default" "never")))
      (unless (zerop (car r)) (error "gpg --quick-gen-key: %s" (cdr r))))
    (let ((out (cdr (buildd-reply-test-gpg "--with-colons" "--list-secret-keys"))))
      (string-match "^fpr:+\\([0-9A-F]+\\):" out)
      (setq buildd-reply-test-fingerprint (match-string 1 out))))
  (setq epg-gpg-home-directory buildd-reply-test-gnupghome
        epg-pinentry-mode 'loopback
        buildd-reply-signers (list buildd-reply-test-fingerprint)
        user-mail-address "admin@example.org"
        user-full-name "Buildd Admin"
        message-send-mail-function #'buildd-reply-test-write-mail
        message-interactive nil
        message-signature nil
        message-generate-headers-first nil))

(defun buildd-reply-test-write-mail ()
  "A `message-send-mail-function': write the mail to the outbox directory.
As `sendmail-send-it' does, the header separator becomes an empty line."
  (let ((coding-system-for-write 'binary)
        (n (length (directory-files buildd-reply-test-outbox nil "\\.eml\\'"))))
    (goto-char (point-min))
    (when (re-search-forward (concat "^" (regexp-quote mail-header-separator) "\n") nil t)
      (replace-match "\n" t t))
    (write-region (point-min) (point-max)
                  (expand-file-name (format "%03d.eml" (1+ n)) buildd-reply-test-outbox)
                  nil 'quiet)))

(defmacro buildd-reply-test-with-env (&rest body)
  "Run BODY with the test key, a fresh outbox and no leftover buffers."
  (declare (indent 0) (debug t))
  `(progn
     (buildd-reply-test-setup)
     (let ((buildd-reply-test-outbox (make-temp-file "buildd-reply-outbox" t))
           (buildd-reply-send-immediately t)
           (before (buffer-list)))
       (unwind-protect (progn ,@body)
         (dolist (b (buffer-list))
           (when (and (buffer-live-p b) (not (memq b before)))
             (with-current-buffer b (set-buffer-modified-p nil))
             (kill-buffer b)))
         (delete-directory buildd-reply-test-outbox t)))))

(defmacro buildd-reply-test-with-bug-record (&rest body)
  "Run BODY with a fresh, empty `buildd-reply-bug-record-file'."
  (declare (indent 0) (debug t))
  `(let ((buildd-reply-bug-record-file (make-temp-file "buildd-reply-bugs" nil ".eld")))
     (unwind-protect (progn ,@body)
       (delete-file buildd-reply-bug-record-file))))

;; The bug flow of the admin overview, for every reader.
(defun buildd-reply-test-bug-flow (show-log show-ack)
  "C-c C-b on log-failed-depwait.mail, then C-c C-a on bug-ack.mail.
SHOW-LOG and SHOW-ACK show those mails in a reader and call the function
they are given in its buffer.  The report is left as a draft; the signed
fail with (see #1234567) goes to the buildd as a reply to the log."
  (buildd-reply-test-with-env
    (buildd-reply-test-with-bug-record
      (funcall show-log (lambda () (execute-kbd-macro (kbd "C-c C-b"))))
      (should (derived-mode-p 'message-mode))
      (should (equal (message-fetch-field "to") buildd-reply-bug-address))
      (should (string-match-p "^Package: src:frobnicate$" (buffer-string)))
      (set-buffer-modified-p nil)
      (kill-buffer)
      (funcall show-ack (lambda ()
                          (should buildd-reply-mode)
                          (execute-kbd-macro (kbd "C-c C-a"))))
      (let ((sent (buildd-reply-test-sent)))
        (should (= (length sent) 1))
        (should (equal (buildd-reply-test-header (car sent) "to")
                       "buildd-bookworm@build-amd64.example.org"))
        (buildd-reply-test-check-reply
         (car sent) "Log for failed build of frobnicate_2.4-1 (dist=bookworm)"
         "<20251121080245.5678.frobnicate@build-amd64.example.org>"
         "fail\n(see #1234567)\nfrobnicate_2.4-1 (dist=bookworm)\n")))))

(defun buildd-reply-test-sent ()
  "The mails written to the outbox, oldest first, as strings."
  (mapcar (lambda (f)
            (with-temp-buffer
              (insert-file-contents f)
              (buffer-string)))
          (directory-files buildd-reply-test-outbox t "\\.eml\\'")))

(defun buildd-reply-test-header (mail name)
  "Header NAME of the MAIL string."
  (with-temp-buffer
    (insert mail)
    (goto-char (point-min))
    (narrow-to-region (point-min) (if (re-search-forward "^$" nil t) (point) (point-max)))
    (let ((v (mail-fetch-field name)))
      (and v (replace-regexp-in-string "\n\\([ \t]\\)" "\\1" v)))))

(defun buildd-reply-test-body (mail)
  "The body of the MAIL string."
  (substring mail (+ 2 (string-match "\n\n" mail))))

(defun buildd-reply-test-verify (signed)
  "Verify the clearsigned text SIGNED with gpg; return the text it signs.
Fails the test unless gpg says GOODSIG by the test key."
  (let ((file (make-temp-file "buildd-reply-signed")))
    (unwind-protect
        (progn
          (let ((coding-system-for-write 'utf-8-unix))
            (write-region signed nil file nil 'quiet))
          (let ((v (buildd-reply-test-gpg "--status-fd" "1" "--verify" file)))
            (should (equal (car v) 0))
            (should (string-match-p "^\\[GNUPG:\\] GOODSIG " (cdr v)))
            (should (string-match-p (concat "^\\[GNUPG:\\] VALIDSIG "
                                            buildd-reply-test-fingerprint)
                                    (cdr v))))
          (should (string-match-p "^Hash: SHA\\(256\\|384\\|512\\)$" signed))
          (let ((d (buildd-reply-test-gpg "--quiet" "--decrypt" file)))
            (should (equal (car d) 0))
            (with-temp-buffer
              (insert (cdr d))
              (goto-char (point-min))
              (while (re-search-forward "^gpg: .*\n" nil t) (replace-match ""))
              (buffer-string))))
      (delete-file file))))

(defun buildd-reply-test-check-reply (mail subject in-reply-to signed-text)
  "MAIL answers SUBJECT (with \"Re: \") and IN-REPLY-TO; its body signs SIGNED-TEXT.
The fixtures carry no References, so the reply's References is IN-REPLY-TO."
  (should (equal (buildd-reply-test-header mail "subject") (concat "Re: " subject)))
  (should (equal (buildd-reply-test-header mail "in-reply-to") in-reply-to))
  (should (equal (buildd-reply-test-header mail "references") in-reply-to))
  (let ((body (buildd-reply-test-body mail)))
    (should (string-prefix-p "-----BEGIN PGP SIGNED MESSAGE-----\n" body))
    (should (string-match-p "-----END PGP SIGNATURE-----\n*\\'" body))
    (should (equal (buildd-reply-test-verify body) signed-text))))

(defun buildd-reply-test-fixture (name)
  "The raw text of fixture mail NAME."
  (with-temp-buffer
    (insert-file-contents-literally (expand-file-name name buildd-reply-test-data))
    (buffer-string)))

;;;; Mail reader contexts

(defun buildd-reply-test-in-rmail (name fn)
  "Show fixture NAME in real Rmail (an mbox file) and call FN there.
The buffer FN leaves current stays current."
  (let ((mbox (make-temp-file "buildd-reply-mbox"))
        (after nil)
        (rmail-primary-inbox-list nil)
        (rmail-display-summary nil))
    (unwind-protect
        (progn
          (with-temp-file mbox
            (set-buffer-multibyte nil)
            (insert "From buildd@build-amd64.example.org Fri Nov 21 07:31:02 2025\n"
                    (buildd-reply-test-fixture name) "\n"))
          (rmail mbox)
          (rmail-show-message 1)
          (should (derived-mode-p 'rmail-mode))
          (funcall fn)
          (setq after (current-buffer)))
      (when (get-file-buffer mbox)
        (with-current-buffer (get-file-buffer mbox)
          (set-buffer-modified-p nil)
          (kill-buffer)))
      (delete-file mbox)
      (when (buffer-live-p after) (set-buffer after)))))

(defun buildd-reply-test-in-gnus (name fn)
  "Show fixture NAME as Gnus does (raw in the original article buffer,
displayed in a `gnus-article-mode' buffer) and call FN in the article buffer.
The buffer FN leaves current stays current."
  (let ((raw (buildd-reply-test-fixture name))
        (after nil))
    (with-current-buffer (get-buffer-create gnus-original-article-buffer)
      (set-buffer-multibyte nil)
      (erase-buffer)
      (insert raw))
    (with-current-buffer (get-buffer-create "*Article buildd-test*")
      (gnus-article-mode)
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert (decode-coding-string raw 'utf-8)))
      (goto-char (point-min))
      (switch-to-buffer (current-buffer))
      (run-hooks 'gnus-article-prepare-hook)
      (funcall fn)
      (setq after (current-buffer)))
    (set-buffer after)))

(defun buildd-reply-test-in-draft (name fn &optional with-reply-buffer)
  "Start a reply to fixture NAME as a mail reader would and call FN in it.
The log is cited in the draft and `message-reply-headers' set as Gnus
sets it; WITH-REPLY-BUFFER also sets
`message-reply-buffer' to a buffer holding the article."
  (let* ((info (buildd-reply--parse-text (buildd-reply-test-fixture name)))
         (article (when with-reply-buffer
                    (with-current-buffer (generate-new-buffer "*article*")
                      (insert (buildd-reply-test-fixture name))
                      (current-buffer)))))
    (message-mail (or (plist-get info :reply-to) (plist-get info :from))
                  (concat "Re: " (plist-get info :subject))
                  `((In-Reply-To . ,(plist-get info :message-id))))
    (setq message-reply-buffer article
          ;; What Gnus' reply commands set; message-mode makes References of it.
          message-reply-headers (make-full-mail-header
                                 0 (plist-get info :subject) (plist-get info :from)
                                 nil (plist-get info :message-id)))
    (message-goto-body)
    (insert (plist-get info :from) " writes:\n\n")
    (dolist (l (split-string (plist-get info :body) "\n"))
      (insert (if (string-empty-p l) ">" (concat "> " l)) "\n"))
    (funcall fn)))

(defun buildd-reply-test-in-buffer (name fn)
  "Visit fixture NAME as a plain file buffer, turn the mode on, call FN there.
The buffer FN leaves current stays current."
  (let ((visit (find-file-noselect (expand-file-name name buildd-reply-test-data)))
        (after nil))
    (switch-to-buffer visit)
    (buildd-reply-mode 1)
    (unwind-protect (progn (funcall fn) (setq after (current-buffer)))
      (kill-buffer visit)
      (when (buffer-live-p after) (set-buffer after)))))

(defconst buildd-reply-test-contexts
  '(buildd-reply-test-in-rmail buildd-reply-test-in-gnus
    buildd-reply-test-in-draft buildd-reply-test-in-buffer)
  "Every way a mail is shown to the admin.")

(defun buildd-reply-test-expected-changes (name)
  "The .changes paragraph inside fixture NAME, as the test reads it."
  (let ((body (plist-get (buildd-reply--parse-text (buildd-reply-test-fixture name)) :body)))
    (string-match "^Format: 1.8\n\\(?:.+\n\\)*?Files:\n\\(?: .*\n\\)+" body)
    (match-string 0 body)))

;;;; Reading logs

(ert-deftest buildd-reply-test-subject ()
  (dolist (c '(("Log for successful build of hello_1.0-1 (dist=bookworm)"
                (log "hello_1.0-1" "bookworm" nil))
               ("Re: Log for failed build of gizmo_0.9+dfsg-2 on arm64 (dist=bookworm)"
                (log "gizmo_0.9+dfsg-2" "bookworm" "arm64"))
               ("Log for successful build of hello_1.0-1 on kfreebsd-amd64 (dist=bookworm)"
                (log "hello_1.0-1" "bookworm" "kfreebsd-amd64"))
               ("Should I build hello_1.0-2 (dist=bookworm)?"
                (should-build "hello_1.0-2" "bookworm" nil))
               ("Re: Should I build hello_1.0-2 on arm64 (dist=bookworm)?"
                (should-build "hello_1.0-2" "bookworm" "arm64"))
               ("Re: Re: log for FAILED build of hello_1:2.0-1+b1 (dist=sid)"
                (log "hello_1:2.0-1+b1" "sid" nil))
               ;; Folded, as a mailer folds a long subject.
               ("Log for failed build of buildd-demo-depwait_1.0 on amd64\n (dist=bookworm)"
                (log "buildd-demo-depwait_1.0" "bookworm" "amd64"))
               ("Build Daemon Statistics" nil)))
    (should (equal (buildd-reply--subject-info (car c)) (cadr c)))))

(ert-deftest buildd-reply-test-find-changes ()
  (dolist (name '("log-successful.mail" "log-successful-sbuild.mail"))
    (let* ((body (plist-get (buildd-reply--parse-text (buildd-reply-test-fixture name)) :body))
           (changes (buildd-reply-find-changes body)))
      (should (string-prefix-p "Format: 1.8\n" changes))
      (should (equal changes (buildd-reply-test-expected-changes name)))
      (should (string-match-p "\n \\S-+ [0-9]+ \\S-+ \\S-+ hello[^ ]*_[^ ]+_amd64\\.\\(?:deb\\|buildinfo\\)\n\\'" changes))))
  (should-error (buildd-reply-find-changes "no changes here\nfoo.changes:\n\nblah\n")
                :type 'user-error))

(ert-deftest buildd-reply-test-missing-deps ()
  (dolist (c '(("log-failed-depwait.mail" "libfoo-dev (>= 1.2), libbar-dev, libbaz-dev")
               ("log-failed-unmet.mail"
                "libgizmo-dev (>= 0.9), debhelper-compat, libqt6-dev, python3-all-dev (>> 3.11), libwidget-dev, libzork-dev")
               ("log-successful.mail" nil)))
    (should (equal (buildd-reply-missing-deps
                    (plist-get (buildd-reply--parse-text (buildd-reply-test-fixture (car c)))
                               :body))
                   (cadr c))))
  (should (equal (buildd-reply-missing-deps
                  "After installing, the following source dependencies are still unsatisfied:\nlibc6-dev(inst 2.1 ! >= wanted 2.2) libm-dev(inst 1 ! = wanted 2)\n")
                 "libc6-dev (>= 2.2), libm-dev"))
  (should (equal (buildd-reply-missing-deps "E: Couldn't find package libold-dev\n")
                 "libold-dev")))

;; The two logs below were written by buildd's own build tests (real
;; dpkg-buildpackage in a btrfs snapshot); see buildd/build TestLocalArchive.
(ert-deftest buildd-reply-test-real-logs ()
  (let ((ok (buildd-reply-test-fixture "real-log-successful.log"))
        (depwait (buildd-reply-test-fixture "real-log-depwait.log")))
    (let ((changes (buildd-reply-find-changes ok)))
      (should (string-prefix-p "Format: 1.8\n" changes))
      (should (string-match-p "^Checksums-Sha256:\n" changes))
      (should (string-match-p "^Files:\n \\S-+ [0-9]+ " changes)))
    (should-not (buildd-reply-missing-deps ok))
    (should (equal (buildd-reply-missing-deps depwait) "libbuildd-missing-dev (>= 2)"))))

(ert-deftest buildd-reply-test-new-version ()
  (should (equal (buildd-reply-new-version
                  (plist-get (buildd-reply--parse-text
                              (buildd-reply-test-fixture "log-failed-newvers.mail"))
                             :body))
                 "1.0-2"))
  (should (equal (buildd-reply-new-version "hello_1.0-1: only different version 1:1.1-1 found\n")
                 "1:1.1-1"))
  (should-not (buildd-reply-new-version "nothing\n")))

(ert-deftest buildd-reply-test-quoted-printable ()
  "The QP-encoded, UTF-8 fixture is decoded before it is read."
  (let ((body (plist-get (buildd-reply--parse-text
                          (buildd-reply-test-fixture "log-failed-depwait.mail"))
                         :body)))
    (should (string-match-p "Jérôme Frobé" body))
    (should (string-match-p "^\\+=+\\+$" body))))

;;;; The mode and its keys

(ert-deftest buildd-reply-test-keys ()
  (dolist (k '(("C-c C-o" . buildd-reply-ok) ("C-c C-r" . buildd-reply-retry)
               ("C-c C-f" . buildd-reply-fail) ("C-c C-d" . buildd-reply-dep-wait)
               ("C-c M-g" . buildd-reply-giveback) ("C-c C-m" . buildd-reply-manual)
               ("C-c C-n" . buildd-reply-newvers) ("C-c M-n" . buildd-reply-not-for-us)
               ("C-c C-p" . buildd-reply-purge) ("C-c C-]" . buildd-reply-upload-remove)
               ("C-c C-s" . buildd-reply-edit-manual-source-deps) ("C-c C-b" . buildd-reply-bug)
               ("C-c C-a" . buildd-reply-bug-ack-append)))
    (should (eq (lookup-key buildd-reply-mode-map (kbd (car k))) (cdr k)))
    (with-temp-buffer
      (message-mode)
      (buildd-reply-mode 1)
      (should (eq (key-binding (kbd (car k))) (cdr k))))))

(ert-deftest buildd-reply-test-mode-turns-on ()
  (buildd-reply-test-with-env
    (dolist (ctx buildd-reply-test-contexts)
      (unless (eq ctx 'buildd-reply-test-in-buffer)
        (funcall ctx "log-successful.mail" (lambda () (should buildd-reply-mode)))
        (funcall ctx "should-build.mail" (lambda () (should buildd-reply-mode)))))
    (with-current-buffer gnus-original-article-buffer
      (erase-buffer)
      (insert "From: someone@example.org\nSubject: lunch?\n\nhi\n"))
    (with-temp-buffer
      (insert "From: someone@example.org\nSubject: lunch?\n\nhi\n")
      (gnus-article-mode)
      (run-hooks 'gnus-article-prepare-hook)
      (should-not buildd-reply-mode))
    (message-mail "someone@example.org" "Re: lunch?")
    (should-not buildd-reply-mode)))

;;;; The commands, on every reader

(ert-deftest buildd-reply-test-ok ()
  "C-c C-o sends the log's .changes clearsigned, in every reader."
  (dolist (name '("log-successful.mail" "log-successful-sbuild.mail"))
    (let* ((info (buildd-reply--parse-text (buildd-reply-test-fixture name)))
           (changes (buildd-reply-test-expected-changes name)))
      (dolist (ctx buildd-reply-test-contexts)
        (buildd-reply-test-with-env
          (funcall ctx name (lambda () (execute-kbd-macro (kbd "C-c C-o"))))
          (let ((sent (buildd-reply-test-sent)))
            (should (= (length sent) 1))
            (should (equal (buildd-reply-test-header (car sent) "to")
                           (plist-get info :from)))
            (buildd-reply-test-check-reply (car sent) (plist-get info :subject)
                                           (plist-get info :message-id) changes)))))))

(ert-deftest buildd-reply-test-ok-draft-reply-buffer ()
  "In a reply whose reader set `message-reply-buffer', the log is read there."
  (buildd-reply-test-with-env
    (buildd-reply-test-in-draft "log-successful.mail" #'buildd-reply-ok t)
    (let ((sent (buildd-reply-test-sent)))
      (should (= (length sent) 1))
      (buildd-reply-test-check-reply
       (car sent) "Log for successful build of hello_1.0-1 (dist=bookworm)"
       "<20251121073102.1234.hello@build-amd64.example.org>"
       (buildd-reply-test-expected-changes "log-successful.mail")))))

(ert-deftest buildd-reply-test-keywords ()
  "The keyword replies that go at once, on every reader."
  (let ((subject "Log for failed build of frobnicate_2.4-1 (dist=bookworm)")
        (id "<20251121080245.5678.frobnicate@build-amd64.example.org>"))
    (dolist (k '(("C-c C-r" . "retry") ("C-c M-g" . "giveback") ("C-c C-m" . "manual")
                 ("C-c M-n" . "not-for-us") ("C-c C-p" . "purge") ("C-c C-]" . "upload-rem")
                 ("C-c C-d" . "dep-wait libfoo-dev (>= 1.2), libbar-dev, libbaz-dev")))
      (dolist (ctx buildd-reply-test-contexts)
        (buildd-reply-test-with-env
          (funcall ctx "log-failed-depwait.mail"
                   (lambda () (execute-kbd-macro (kbd (car k)))))
          (let ((sent (buildd-reply-test-sent)))
            (should (= (length sent) 1))
            (should (equal (buildd-reply-test-header (car sent) "to")
                           "buildd-bookworm@build-amd64.example.org"))
            (buildd-reply-test-check-reply (car sent) subject id
                                           (concat (cdr k) "\nfrobnicate_2.4-1 (dist=bookworm)\n"))))))))

(ert-deftest buildd-reply-test-dep-wait-unmet ()
  (buildd-reply-test-with-env
    (buildd-reply-test-in-rmail "log-failed-unmet.mail" #'buildd-reply-dep-wait)
    (buildd-reply-test-check-reply
     (car (buildd-reply-test-sent))
     "Log for failed build of gizmo_0.9+dfsg-2 on arm64 (dist=bookworm)"
     "<20251121091110.77.gizmo@build-arm64.example.org>"
     "dep-wait libgizmo-dev (>= 0.9), debhelper-compat, libqt6-dev, python3-all-dev (>> 3.11), libwidget-dev, libzork-dev\ngizmo_0.9+dfsg-2 on arm64 (dist=bookworm)\n")))

(ert-deftest buildd-reply-test-newvers ()
  (dolist (ctx buildd-reply-test-contexts)
    (buildd-reply-test-with-env
      (funcall ctx "log-failed-newvers.mail" (lambda () (execute-kbd-macro (kbd "C-c C-n"))))
      (buildd-reply-test-check-reply
       (car (buildd-reply-test-sent))
       "Log for failed build of hello_1.0-1 (dist=bookworm)"
       "<20251121100003.42.hello@build-amd64.example.org>"
       "newvers 1.0-2\nhello_1.0-1 (dist=bookworm)\n"))))

(ert-deftest buildd-reply-test-fail ()
  "C-c C-f leaves point where the reason goes; the reply is signed when sent."
  (dolist (ctx buildd-reply-test-contexts)
    (buildd-reply-test-with-env
      (funcall ctx "log-failed-newvers.mail"
               (lambda () (execute-kbd-macro (kbd "C-c C-f"))))
      (should (derived-mode-p 'message-mode))
      (should (null (buildd-reply-test-sent)))
      (should (looking-back "^fail\n" (line-beginning-position 0)))
      (insert "configure: error: no C compiler\n(FTBFS with gcc-14)")
      (message-send-and-exit)
      (buildd-reply-test-check-reply
       (car (buildd-reply-test-sent))
       "Log for failed build of hello_1.0-1 (dist=bookworm)"
       "<20251121100003.42.hello@build-amd64.example.org>"
       "fail\nconfigure: error: no C compiler\n(FTBFS with gcc-14)\nhello_1.0-1 (dist=bookworm)\n"))))

(ert-deftest buildd-reply-test-should-build ()
  "On a \"Should I build\" mail, C-c C-o answers build, the others as on logs."
  (dolist (k '(("C-c C-o" . "build") ("C-c M-n" . "not-for-us") ("C-c M-g" . "giveback")))
    (buildd-reply-test-with-env
      (buildd-reply-test-in-gnus "should-build.mail"
                                 (lambda () (execute-kbd-macro (kbd (car k)))))
      (buildd-reply-test-check-reply
       (car (buildd-reply-test-sent))
       "Should I build hello_1.0-2 on amd64 (dist=bookworm)?"
       "<20251121110000.9.hello@build-amd64.example.org>"
       (concat (cdr k) "\nhello_1.0-2 on amd64 (dist=bookworm)\n")))))

(ert-deftest buildd-reply-test-not-found-left-for-editing ()
  "dep-wait and newvers with nothing in the log leave the draft open."
  (dolist (k '(("C-c C-d" . "dep-wait ") ("C-c C-n" . "newvers ")))
    (buildd-reply-test-with-env
      (buildd-reply-test-in-buffer "log-successful.mail"
                                   (lambda () (execute-kbd-macro (kbd (car k)))))
      (should (derived-mode-p 'message-mode))
      (should (null (buildd-reply-test-sent)))
      (should (looking-back (concat "^" (cdr k)) (line-beginning-position)))
      (insert "2.0-1")
      (message-send-and-exit)
      (should (string-match-p (concat "\n\n" (cdr k) "2.0-1\nhello_1.0-1 (dist=bookworm)\n-----BEGIN PGP SIGNATURE")
                              (car (buildd-reply-test-sent)))))))

(ert-deftest buildd-reply-test-edit-before-sending ()
  "A prefix argument, or `buildd-reply-send-immediately' nil, composes only."
  (dolist (how '(prefix custom))
    (buildd-reply-test-with-env
      (let ((buildd-reply-send-immediately (eq how 'prefix)))
        (buildd-reply-test-in-rmail
         "log-failed-depwait.mail"
         (lambda ()
           (if (eq how 'prefix)
               (execute-kbd-macro (kbd "C-u C-c C-r"))
             (buildd-reply-retry))))
        (should (derived-mode-p 'message-mode))
        (should (null (buildd-reply-test-sent)))
        (message-goto-body)
        (should (equal (buffer-substring (point) (point-max)) "retry\nfrobnicate_2.4-1 (dist=bookworm)\n"))
        (message-send-and-exit)
        (should (= 1 (length (buildd-reply-test-sent))))))))

(ert-deftest buildd-reply-test-tampered-fails-verify ()
  "A reply changed after signing no longer verifies."
  (buildd-reply-test-with-env
    (buildd-reply-test-in-gnus "log-failed-depwait.mail" #'buildd-reply-retry)
    (let* ((body (buildd-reply-test-body (car (buildd-reply-test-sent))))
           (bad (replace-regexp-in-string "^retry$" "purge" body))
           (file (make-temp-file "buildd-reply-bad")))
      (should-not (equal body bad))
      (unwind-protect
          (progn
            (write-region bad nil file nil 'quiet)
            (should-not (equal 0 (car (buildd-reply-test-gpg "--verify" file)))))
        (delete-file file)))))

(provide 'buildd-reply-test)

;;; buildd-reply-test.el ends here
