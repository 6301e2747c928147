;;; buildd-reply-e2e-test.el --- buildd-reply.el against buildd-mail and wanna-build  -*- lexical-binding: t; -*-

;;; Commentary:

;; End to end: for each command, a fresh buildd home and wanna-build queue
;; (seeded with the real `wanna-build' CLI), a build log mail as buildd
;; sends it (its Message-ID recorded in the home's sent-mails, the built
;; files in build/), the reply made by the command in a Gnus article
;; buffer, piped to the real `buildd-mail' whose admin_keyring holds the
;; test key; then the queue, REDO, PURGE and upload/ show the effect.  A
;; reply changed after signing is refused with an error reply and changes
;; nothing.  A host that builds bookworm for amd64 and arm64 gets the
;; answer to its arm64 log mail on its arm64 queue only.  The programs are $BUILDD_MAIL and $WANNA_BUILD (the Makefile
;; sets them to ../bin/).

;;; Code:

(require 'ert)
(require 'buildd-reply-test)

(defconst buildd-reply-e2e-pkgv "hello_1.0-1" "The package of the tests.")

(defun buildd-reply-e2e-program (var)
  "The program named by environment variable VAR; skip loudly without it."
  (let ((p (getenv var)))
    (unless (and p (file-executable-p p))
      (ert-skip (format "LOUD SKIP: $%s (%s) is not an executable; run `make -C elisp test' which builds ../bin/"
                        var p)))
    p))

(defun buildd-reply-e2e-run (program stdin &rest args)
  "Run PROGRAM with ARGS (120 s at most), STDIN a file or nil; return (EXIT . OUTPUT)."
  (with-temp-buffer
    (cons (apply #'call-process "timeout" stdin t nil "120" program args)
          (buffer-string))))

(defun buildd-reply-e2e-write (file text)
  "Write TEXT to FILE, creating its directory."
  (make-directory (file-name-directory file) t)
  (let ((coding-system-for-write 'utf-8-unix))
    (write-region text nil file nil 'quiet)))

(defun buildd-reply-e2e-read (file)
  "The contents of FILE, or \"\" when it does not exist."
  (if (file-exists-p file)
      (with-temp-buffer (insert-file-contents file) (buffer-string))
    ""))

(defun buildd-reply-e2e-file-entry (file name)
  "Checksum lines of FILE for the .changes, as (SHA1 SHA256 MD5), under NAME."
  (let ((data (with-temp-buffer
                (set-buffer-multibyte nil)
                (insert-file-contents-literally file)
                (buffer-string))))
    (list (format " %s %d %s\n" (secure-hash 'sha1 data) (length data) name)
          (format " %s %d %s\n" (secure-hash 'sha256 data) (length data) name)
          (format " %s %d misc optional %s\n" (md5 data) (length data) name))))

(defun buildd-reply-e2e-changes (build-dir)
  "Put a built hello_1.0-1 into BUILD-DIR; return its .changes text."
  (let* ((deb (expand-file-name "hello_1.0-1_amd64.deb" build-dir))
         (_ (buildd-reply-e2e-write deb (format "a built package %s\n" (random))))
         (e (buildd-reply-e2e-file-entry deb "hello_1.0-1_amd64.deb")))
    (concat "Format: 1.8\n"
            "Date: " (format-time-string "%a, %d %b %Y %T %z") "\n"
            "Source: hello\nBinary: hello\nArchitecture: amd64\nVersion: 1.0-1\n"
            "Distribution: bookworm\nUrgency: medium\n"
            "Maintainer: Test Maintainer <test@example.org>\n"
            "Changed-By: Test Maintainer <test@example.org>\n"
            "Description:\n hello      - example package\n"
            "Changes:\n hello (1.0-1) bookworm; urgency=medium\n .\n   * Initial release.\n"
            "Checksums-Sha1:\n" (nth 0 e)
            "Checksums-Sha256:\n" (nth 1 e)
            "Files:\n" (nth 2 e))))

(defun buildd-reply-e2e-log-mail (file successful message-id changes &optional arch)
  "Write to FILE the log mail buildd sends (SUCCESSFUL or failed), with
MESSAGE-ID, and CHANGES under its heading when non-nil; its subject
names ARCH when non-nil, as buildd's do."
  (let ((box (lambda (title)
               (format "[%s] +%s+\n[%s] | %-77s|\n[%s] +%s+\n"
                       "2025-11-21 07:30:12" (make-string 78 ?-)
                       "2025-11-21 07:30:12" title
                       "2025-11-21 07:30:12" (make-string 78 ?-)))))
    (buildd-reply-e2e-write
     file
     (concat
      "From: buildd on build-amd64 <buildd@build-amd64.example.org>\n"
      "To: buildd-admin@example.org\n"
      "Subject: Log for " (if successful "successful" "failed")
      " build of hello_1.0-1" (if arch (concat " on " arch) "") " (dist=bookworm)\n"
      "Date: " (format-time-string "%a, %d %b %Y %T %z") "\n"
      "Message-ID: <" message-id ">\n"
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: 7bit\n\n"
      "sbuild (Debian sbuild) 0.85.0 (04 January 2023) on build-amd64\n\n"
      (funcall box "Install build dependencies") "\n"
      (if successful
          "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
        (concat "The following packages have unmet dependencies:\n"
                " sbuild-build-depends-main-dummy : Depends: libfoo-dev (>= 1.2) but it is not going to be installed\n"
                "E: Unable to correct problems, you have held broken packages.\n"
                "E: Can't find source for hello_1.0-1\n"
                "(only different version(s) 1.0-2 found)\n"))
      "\n" (funcall box "Summary") "\n"
      "Package: hello\nVersion: 1.0-1\nDistribution: bookworm\nArchitecture: amd64\n"
      "Build-Time: 3\nBuild-Space: 120\n"
      "Status: " (if successful "successful" "attempted") "\n"
      (if successful "" "Fail-Stage: install-deps\n")
      (if changes
          (concat "\n" (funcall box "Changes") "\n"
                  "hello_1.0-1_amd64.changes:\n" (make-string 27 ?-) "\n\n" changes)
        "")))))

(defun buildd-reply-e2e-setup (dir successful)
  "A buildd home, config and queue in DIR, with hello_1.0-1 Building.
Return a plist (:conf :home :log :id :wanna-build)."
  (let* ((wb (buildd-reply-e2e-program "WANNA_BUILD"))
         (home (expand-file-name "home" dir))
         (conf (expand-file-name "buildd.conf" dir))
         (keyring (expand-file-name "admins.asc" dir))
         (id (format "%d.hello_1.0-1@build-amd64.example.org" (random 1000000000)))
         (log (expand-file-name "log.mail" dir)))
    (let ((k (buildd-reply-test-gpg "--armor" "--export" buildd-reply-test-fingerprint)))
      (should (equal (car k) 0))
      (buildd-reply-e2e-write keyring (cdr k)))
    (buildd-reply-e2e-write
     conf
     (format "home = %S\nadmin_mail = \"buildd-admin@example.org\"\nwanna_build_db = %S\nadmin_keyring = %S\nmail_from = \"buildd@build-amd64.example.org\"\n\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\nwanna_build_db_user = \"buildd-e2e\"\n"
             home (expand-file-name "wanna-build.db" dir) keyring))
    (make-directory (expand-file-name "build" home) t)
    (let ((r (buildd-reply-e2e-run wb nil "--config" conf "--dist=bookworm" "-U" "buildd-e2e"
                                   "-v" "--take" buildd-reply-e2e-pkgv)))
      (should (equal (car r) 0))
      (should (string-match-p "hello: ok" (cdr r))))
    (buildd-reply-e2e-write (expand-file-name "sent-mails" home)
                            (format "%s %d bookworm %s log\n" id
                                    (- (float-time) 3600) buildd-reply-e2e-pkgv))
    (buildd-reply-e2e-log-mail log successful id
                               (and successful
                                    (buildd-reply-e2e-changes (expand-file-name "build" home))))
    (list :conf conf :home home :log log :id id :wanna-build wb)))

(defun buildd-reply-e2e-info (env)
  "wanna-build --info hello in ENV, as an alist of field . value."
  (let ((r (buildd-reply-e2e-run (plist-get env :wanna-build) nil
                                 "--config" (plist-get env :conf) "--dist=bookworm"
                                 "--info" "hello"))
        (fields nil))
    (should (equal (car r) 0))
    (dolist (l (split-string (cdr r) "\n"))
      (when (string-match "\\`  \\([^:]+?\\) *: \\(.*\\)\\'" l)
        (push (cons (match-string 1 l) (match-string 2 l)) fields)))
    fields))

(defun buildd-reply-e2e-state (env)
  "The queue state of hello in ENV."
  (cdr (assoc "State" (buildd-reply-e2e-info env))))

(defun buildd-reply-e2e-error-replies (env)
  "The error replies buildd-mail left in ENV's outbox."
  (let ((dir (expand-file-name "outbox" (plist-get env :home))))
    (cl-remove-if-not
     (lambda (m) (string-match-p "could not be processed" m))
     (mapcar #'buildd-reply-e2e-read
             (and (file-directory-p dir)
                  (directory-files-recursively dir "."))))))

(defun buildd-reply-e2e-deliver (env mail)
  "Pipe MAIL (a string) to buildd-mail in ENV."
  (let ((file (make-temp-file "buildd-reply-e2e-mail")))
    (unwind-protect
        (let ((coding-system-for-write 'binary))
          (write-region mail nil file nil 'quiet)
          (let ((r (buildd-reply-e2e-run (buildd-reply-e2e-program "BUILDD_MAIL") file
                                         "--config" (plist-get env :conf))))
            (should (equal r '(0 . "")))))
      (delete-file file))))

(defun buildd-reply-e2e-reply (env keys &optional reason)
  "The reply KEYS make on ENV's log mail in a Gnus article buffer.
REASON is typed where point is left, then the reply is sent."
  (buildd-reply-test-in-gnus (plist-get env :log)
                             (lambda () (execute-kbd-macro (kbd keys))))
  (when reason
    (insert reason)
    (message-send-and-exit))
  (let ((sent (buildd-reply-test-sent)))
    (should (= (length sent) 1))
    (delete-file (car (directory-files buildd-reply-test-outbox t "\\.eml\\'")))
    (car sent)))

(defmacro buildd-reply-e2e-case (successful &rest body)
  "Run BODY with `env' bound to a fresh e2e setup (SUCCESSFUL log or not)."
  (declare (indent 1) (debug t))
  `(buildd-reply-test-with-env
     (let* ((dir (make-temp-file "buildd-reply-e2e" t)))
       (unwind-protect
           (let ((env (buildd-reply-e2e-setup dir ,successful)))
             ,@body)
         (delete-directory dir t)))))

(defun buildd-reply-e2e-check (env keys reason check)
  "Answer ENV's log with KEYS (and REASON), deliver, and call CHECK."
  (buildd-reply-e2e-deliver env (buildd-reply-e2e-reply env keys reason))
  (should (null (buildd-reply-e2e-error-replies env)))
  (funcall check))

(ert-deftest buildd-reply-e2e-ok ()
  "C-c C-o: the signed .changes moves the package to the upload queue."
  (buildd-reply-e2e-case t
    (buildd-reply-e2e-check
     env "C-c C-o" nil
     (lambda ()
       (let ((up (expand-file-name "upload" (plist-get env :home))))
         (should (file-exists-p (expand-file-name "hello_1.0-1_amd64.changes" up)))
         (should (file-exists-p (expand-file-name "hello_1.0-1_amd64.deb" up)))
         (should (string-match-p "BEGIN PGP SIGNED MESSAGE"
                                 (buildd-reply-e2e-read
                                  (expand-file-name "hello_1.0-1_amd64.changes" up)))))))))

(defun buildd-reply-e2e-home-file (env name)
  "The contents of NAME in ENV's buildd home."
  (buildd-reply-e2e-read (expand-file-name name (plist-get env :home))))

(defconst buildd-reply-e2e-keyword-cases
  (list
   (list "C-c C-r" nil
         (lambda (env)
           (should (string-match-p "^hello_1\\.0-1 " (buildd-reply-e2e-home-file env "build/REDO")))))
   (list "C-c C-f" "configure: error: no C compiler"
         (lambda (env)
           (let ((info (buildd-reply-e2e-info env)))
             (should (equal (cdr (assoc "State" info)) "Failed")))))
   (list "C-c C-d" nil
         (lambda (env)
           (let ((info (buildd-reply-e2e-info env)))
             (should (equal (cdr (assoc "State" info)) "Dep-Wait"))
             (should (string-match-p "libfoo-dev (>= 1.2)"
                                     (or (cdr (assoc "Depends" info)) ""))))))
   (list "C-c M-g" nil
         (lambda (env)
           (should (member (buildd-reply-e2e-state env) '("Needs-Build" "BD-Uninstallable")))))
   (list "C-c C-m" nil
         (lambda (env)
           (should (equal (buildd-reply-e2e-state env) "Building"))
           (should (string-match-p "will be finished manually"
                                   (buildd-reply-e2e-home-file env "daemon.log")))))
   (list "C-c C-n" nil
         (lambda (env)
           (should (string-match-p "^hello_1\\.0-2 " (buildd-reply-e2e-home-file env "build/REDO")))))
   (list "C-c M-n" nil
         (lambda (env) (should (equal (buildd-reply-e2e-state env) "Not-For-Us"))))
   (list "C-c C-p" nil
         (lambda (env)
           (should (string-match-p "hello-1\\.0" (buildd-reply-e2e-home-file env "build/PURGE"))))))
  "Each keyword key, the reason typed (fail), and the check of its effect.")

(ert-deftest buildd-reply-e2e-keywords ()
  "Every keyword command's signed reply is accepted and acts on the queue."
  (dolist (c buildd-reply-e2e-keyword-cases)
    (ert-info ((car c) :prefix "key: ")
      (buildd-reply-e2e-case nil
        (make-directory (expand-file-name "build/hello-1.0" (plist-get env :home)) t)
        (buildd-reply-e2e-check env (nth 0 c) (nth 1 c)
                                (lambda () (funcall (nth 2 c) env)))))))

(ert-deftest buildd-reply-e2e-tampered ()
  "A reply changed after it was signed is refused and changes nothing."
  (buildd-reply-e2e-case nil
    (let* ((reply (buildd-reply-e2e-reply env "C-c M-n"))
           (bad (replace-regexp-in-string "^not-for-us$" "giveback" reply)))
      (should-not (equal reply bad))
      (buildd-reply-e2e-deliver env bad)
      (should (= 1 (length (buildd-reply-e2e-error-replies env))))
      (should (equal (buildd-reply-e2e-state env) "Building")))))

(ert-deftest buildd-reply-e2e-upload-remove ()
  "C-c C-o moves the package to upload/; C-c C-] takes it out again."
  (buildd-reply-e2e-case t
    (let ((up (expand-file-name "upload" (plist-get env :home))))
      (buildd-reply-e2e-check
       env "C-c C-o" nil
       (lambda () (should (file-exists-p (expand-file-name "hello_1.0-1_amd64.changes" up)))))
      (buildd-reply-e2e-check
       env "C-c C-]" nil
       (lambda ()
         (should-not (file-exists-p (expand-file-name "hello_1.0-1_amd64.changes" up)))
         (should-not (file-exists-p (expand-file-name "hello_1.0-1_amd64.deb" up)))
         (should (string-match-p "remove from upload dir"
                                 (buildd-reply-e2e-home-file env "daemon.log"))))))))

(ert-deftest buildd-reply-e2e-bug-ack ()
  "C-c C-b reports the failure; C-c C-a on the acknowledgement fails the package with the bug."
  (buildd-reply-e2e-case nil
    (buildd-reply-test-with-bug-record
      (let ((ack (expand-file-name "ack.mail" (file-name-directory (plist-get env :log)))))
        (buildd-reply-test-in-gnus (plist-get env :log)
                                   (lambda () (execute-kbd-macro (kbd "C-c C-b"))))
        (let ((subject (message-fetch-field "subject")))
          (should (string-prefix-p "hello_1.0-1 (bookworm): FTBFS on amd64: fails at install-deps" subject))
          (message-send-and-exit)
          (delete-file (car (directory-files buildd-reply-test-outbox t "\\.eml\\'")))
          (buildd-reply-e2e-write
           ack (concat "From: owner@bugs.debian.org (Debian Bug Tracking System)\n"
                       "To: admin@example.org\n"
                       "Subject: Bug#4242: Acknowledgement (" subject ")\n"
                       "Message-ID: <handler.4242.B.1.ack@bugs.debian.org>\n\n"
                       "Thank you for filing a new Bug report with Debian.\n")))
        (buildd-reply-test-in-gnus ack (lambda () (execute-kbd-macro (kbd "C-c C-a"))))
        (let ((sent (buildd-reply-test-sent)))
          (should (= (length sent) 1))
          (buildd-reply-e2e-deliver env (car sent)))
        (should (null (buildd-reply-e2e-error-replies env)))
        (let ((info (buildd-reply-e2e-info env)))
          (should (equal (cdr (assoc "State" info)) "Failed"))
          (should (string-match-p "(see #4242)" (or (cdr (assoc "Failed" info)) ""))))))))

(ert-deftest buildd-reply-e2e-several-arches ()
  "The answer to the arm64 log mail acts on the arm64 queue only.
The host builds bookworm for amd64 and arm64, hello_1.0-1 is Building in
both queues, and the log mails' Message-IDs are recorded with their arch."
  (buildd-reply-test-with-env
    (let* ((dir (make-temp-file "buildd-reply-e2e" t))
           (wb (buildd-reply-e2e-program "WANNA_BUILD"))
           (home (expand-file-name "home" dir))
           (conf (expand-file-name "buildd.conf" dir))
           (keyring (expand-file-name "admins.asc" dir))
           (log (expand-file-name "log.mail" dir))
           (env (list :conf conf :home home :log log :wanna-build wb))
           (state (lambda (arch)
                    (let ((r (buildd-reply-e2e-run wb nil "--config" conf "--dist=bookworm"
                                                   (concat "--arch=" arch) "--info" "hello")))
                      (should (equal (car r) 0))
                      (and (string-match "^  State *: \\(.*\\)$" (cdr r))
                           (match-string 1 (cdr r)))))))
      (unwind-protect
          (progn
            (let ((k (buildd-reply-test-gpg "--armor" "--export" buildd-reply-test-fingerprint)))
              (should (equal (car k) 0))
              (buildd-reply-e2e-write keyring (cdr k)))
            (buildd-reply-e2e-write
             conf
             (concat (format "home = %S\nadmin_mail = \"buildd-admin@example.org\"\nwanna_build_db = %S\nadmin_keyring = %S\nmail_from = \"buildd@build.example.org\"\n"
                             home (expand-file-name "wanna-build.db" dir) keyring)
                     "\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\nwanna_build_db_user = \"buildd-e2e\"\n"
                     "\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"arm64\"\nwanna_build_db_user = \"buildd-e2e\"\n"))
            (make-directory (expand-file-name "build" home) t)
            (dolist (arch '("amd64" "arm64"))
              (let ((r (buildd-reply-e2e-run wb nil "--config" conf "--dist=bookworm" (concat "--arch=" arch)
                                             "-U" "buildd-e2e" "-v" "--take" buildd-reply-e2e-pkgv)))
                (should (equal (car r) 0))))
            (buildd-reply-e2e-write (expand-file-name "sent-mails" home)
                                    (format "log.amd64@build %d bookworm/amd64 %s log\nlog.arm64@build %d bookworm/arm64 %s log\n"
                                            (- (float-time) 3600) buildd-reply-e2e-pkgv
                                            (- (float-time) 3600) buildd-reply-e2e-pkgv))
            (buildd-reply-e2e-log-mail log nil "log.arm64@build" nil "arm64")
            (let ((reply (buildd-reply-e2e-reply env "C-c M-g")))
              (should (string-match-p "^Subject: Re: Log for failed build of hello_1\\.0-1 on arm64 (dist=bookworm)$" reply))
              (should (string-match-p "\ngiveback\nhello_1\\.0-1 on arm64 (dist=bookworm)\n-----BEGIN PGP SIGNATURE" reply))
              (buildd-reply-e2e-deliver env reply))
            (should (null (buildd-reply-e2e-error-replies env)))
            (should (member (funcall state "arm64") '("Needs-Build" "BD-Uninstallable")))
            (should (equal (funcall state "amd64") "Building")))
        (delete-directory dir t)))))

(provide 'buildd-reply-e2e-test)

;;; buildd-reply-e2e-test.el ends here
