;;; buildd-reply.el --- Answer buildd log mails with signed replies  -*- lexical-binding: t; -*-

;; Version: 1.0
;; Package-Requires: ((emacs "28.1"))
;; Keywords: mail, tools

;; This file is not part of GNU Emacs.

;; This program is free software: you can redistribute it and/or modify
;; it under the terms of the GNU General Public License as published by
;; the Free Software Foundation, either version 2 of the License, or
;; (at your option) any later version.

;;; Commentary:

;; A build daemon (buildd) mails each build log to its admin with the
;; subject "Log for successful build of PKG_VERSION on ARCH (dist=DIST)"
;; (or "failed"), and asks "Should I build PKG_VERSION on ARCH
;; (dist=DIST)?" when a package failed before (older buildds leave out
;; "on ARCH").  The admin answers with two keystrokes:
;;
;;   C-c C-o  ok          the .changes from the log, clearsigned
;;   C-c C-r  retry
;;   C-c C-f  fail        point is left where the reason goes
;;   C-c C-d  dep-wait    the missing dependencies gathered from the log
;;   C-c M-g  giveback
;;   C-c C-m  manual
;;   C-c C-n  newvers     the version the log names
;;   C-c M-n  not-for-us
;;   C-c C-]  upload-rem  take the package out of the upload queue
;;   C-c C-p  purge
;;   C-c C-s  edit the dependencies a dep-wait answer carries
;;
;; and, for the distribution's bug tracker:
;;
;;   C-c C-b  a bug report from a failed build's log (for editing)
;;   C-c C-a  in the tracker's acknowledgement: "fail (see #NNN)" to the
;;            buildd that sent the log
;;
;; Every reply is clearsigned with EasyPG (the key in `buildd-reply-signers',
;; else `mml-secure-openpgp-signers', else GnuPG's default key), and keyword
;; replies end in the line "PKG_VERSION on ARCH (dist=DIST)" after the
;; keyword text ("PKG_VERSION (dist=DIST)" when the subject names no
;; architecture), so that the signature binds the package, its version,
;; the architecture of the build and the distribution: buildd-mail acts
;; on nothing else with it.
;;
;; `buildd-reply-mode' turns itself on for buildd mails in Gnus article
;; and summary buffers, Rmail, message-mode replies, and mu4e and notmuch
;; view buffers.  A prefix argument (C-u) to any command composes the
;; reply without sending it; the body is signed when it is sent.

;;; Code:

(require 'cl-lib)
(require 'epg)
(require 'mail-utils)
(require 'message)
(require 'mm-decode)
(require 'mml-sec)
(require 'nnheader)
(require 'format-spec)
(require 'rfc2047)
(require 'seq)
(require 'subr-x)

(defvar gnus-original-article-buffer)
(defvar gnus-summary-buffer)
(defvar gnus-article-buffer)
(defvar rmail-buffer)
(declare-function gnus-summary-select-article "gnus-sum")
(declare-function rmail-apply-in-message "rmail")
(declare-function mu4e-message-at-point "mu4e-message")
(declare-function notmuch-show-get-filename "notmuch-show")

(defgroup buildd-reply nil
  "Signed replies to buildd log mails."
  :group 'mail
  :prefix "buildd-reply-")

(defcustom buildd-reply-signers nil
  "OpenPGP keys (ids, fingerprints or user ids) that sign replies.
nil means `mml-secure-openpgp-signers', and when that is nil too,
GnuPG's default key."
  :type '(repeat (string :tag "Key")))

(defcustom buildd-reply-send-immediately t
  "Non-nil means replies that need no editing are sent at once.
fail, and a dep-wait or newvers whose argument was not found in the
log, are always left for editing; so is every reply composed with a
prefix argument."
  :type 'boolean)

(defcustom buildd-reply-log-subject-regexp
  "Log for \\S-+ build of \\(\\S-+?\\)\\(?: on \\(?3:[[:alnum:]_-]+\\)\\)? (dist=\\(?2:[^)[:space:]]+\\))"
  "Regexp matching the subject of a build log mail.
Group 1 is PKG_VERSION, group 2 the distribution, group 3 (when the
subject has it) the architecture of the build."
  :type 'regexp)

(defcustom buildd-reply-should-build-subject-regexp
  "Should I build \\(\\S-+?\\)\\(?: on \\(?3:[[:alnum:]_-]+\\)\\)? (dist=\\(?2:[^)[:space:]]+\\))"
  "Regexp matching the subject of a \"Should I build\" mail.
Group 1 is PKG_VERSION, group 2 the distribution, group 3 (when the
subject has it) the architecture of the build."
  :type 'regexp)

(defcustom buildd-reply-bug-address "submit@bugs.debian.org"
  "Where `buildd-reply-bug' sends bug reports."
  :type 'string)

(defcustom buildd-reply-bug-severity "serious"
  "The Severity of the bug reports `buildd-reply-bug' composes.
Debian files failures to build from source as serious."
  :type 'string)

(defcustom buildd-reply-log-url-format "https://buildd.example.org/log/%d/%a/%p"
  "The permanent address of a build log, for bug reports.
%p is PKG_VERSION, %d the distribution, %a the architecture.  The
default is the form of the status web's log pages (`wanna-build --web'):
put your status web's host in it."
  :type 'string)

(defcustom buildd-reply-bug-log-lines 30
  "How many lines of the log's end a bug report quotes."
  :type 'integer)

(defcustom buildd-reply-bug-record-file (locate-user-emacs-file "buildd-reply-bugs.eld")
  "Where `buildd-reply-bug' records which log mail each report is about.
`buildd-reply-bug-ack-append' reads it to answer that log mail."
  :type 'file)

(defcustom buildd-reply-new-version-regexps
  '("only different version(?s?)? \\([^][ \t\n(),]+\\) found"
    "^New-Version: \\(\\S-+\\)"
    "newer version \\([^][ \t\n(),]+\\) \\(?:is \\)?available")
  "Regexps finding a newer version in a build log; group 1 is the version."
  :type '(repeat regexp))

;;;; Reading the mail

(defun buildd-reply--strip-re (subject)
  "SUBJECT without leading \"Re:\" prefixes."
  (replace-regexp-in-string "\\`\\(?:[ \t]*[Rr][Ee]:[ \t]*\\)+" "" subject))

(defun buildd-reply--subject-info (subject)
  "Return (KIND PKGV DIST ARCH) for SUBJECT, or nil.
KIND is `log' or `should-build'; ARCH is nil when the subject names no
architecture."
  (when subject
    (let ((s (buildd-reply--strip-re
              ;; A long subject comes folded: unfold it (RFC 5322 2.2.3).
              (replace-regexp-in-string "\r?\n\\([ \t]\\)" "\\1" subject)))
          (case-fold-search t))
      (cond
       ((string-match buildd-reply-log-subject-regexp s)
        (list 'log (match-string 1 s) (match-string 2 s) (match-string 3 s)))
       ((string-match buildd-reply-should-build-subject-regexp s)
        (list 'should-build (match-string 1 s) (match-string 2 s) (match-string 3 s)))))))

(defun buildd-reply--part-text (handle)
  "The decoded text of the text/plain parts of the MIME HANDLE."
  (cond
   ((stringp (car handle))
    (mapconcat #'buildd-reply--part-text (cdr handle) ""))
   ((and (bufferp (car handle))
         (equal (mm-handle-media-type handle) "text/plain"))
    (let* ((charset (mail-content-type-get (mm-handle-type handle) 'charset))
           (coding (or (and charset
                            (mm-charset-to-coding-system (intern (downcase charset))
                                                         nil t))
                       'utf-8)))
      (decode-coding-string (mm-get-part handle) coding)))
   (t "")))

(defun buildd-reply--parse-raw ()
  "Parse the raw message in the current buffer; destroys the buffer's text.
Return a plist (:subject :from :reply-to :message-id :references :body)."
  (goto-char (point-min))
  (when (looking-at "From ")
    (delete-region (point) (line-beginning-position 2)))
  (while (search-forward "\r\n" nil t)
    (replace-match "\n" t t))
  (goto-char (point-min))
  (let* ((hdr-end (if (re-search-forward "^$" nil t) (point) (point-max)))
         (field (lambda (name)
                  (save-restriction
                    (narrow-to-region (point-min) hdr-end)
                    (let ((v (mail-fetch-field name)))
                      (and v (rfc2047-decode-string v))))))
         (info (list :subject (funcall field "subject")
                     :from (funcall field "from")
                     :reply-to (funcall field "reply-to")
                     :message-id (funcall field "message-id")
                     :references (funcall field "references"))))
    (set-buffer-multibyte nil)
    (let ((handle (mm-dissect-buffer t t)))
      (unwind-protect
          (append info (list :body (if handle
                                       (buildd-reply--part-text handle)
                                     "")))
        (when handle (mm-destroy-parts handle))))))

(defun buildd-reply--parse-text (text)
  "Parse TEXT, a raw RFC 822 message, as `buildd-reply--parse-raw' does."
  (with-temp-buffer
    (insert (if (multibyte-string-p text)
                (encode-coding-string text 'utf-8)
              text))
    (buildd-reply--parse-raw)))

(defun buildd-reply--parse-file (file)
  "Parse the raw message in FILE."
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (insert-file-contents-literally file)
    (buildd-reply--parse-raw)))

(defun buildd-reply--buffer-text (buffer)
  "The whole text of BUFFER, unibyte when the buffer is."
  (with-current-buffer buffer
    (save-restriction
      (widen)
      (buffer-substring-no-properties (point-min) (point-max)))))

(defun buildd-reply--gnus-original ()
  "The raw article Gnus keeps, or nil."
  (and (boundp 'gnus-original-article-buffer)
       (get-buffer gnus-original-article-buffer)
       (> (buffer-size (get-buffer gnus-original-article-buffer)) 0)
       (buildd-reply--buffer-text gnus-original-article-buffer)))

(defun buildd-reply--draft-article ()
  "The buildd mail a message-mode reply in the current buffer answers."
  (let ((source
         (if (and (buffer-live-p message-reply-buffer)
                  (not (eq message-reply-buffer (current-buffer))))
             (buildd-reply--buffer-text message-reply-buffer)
           (save-excursion
             (message-goto-body)
             (let ((lines nil))
               (dolist (l (split-string (buffer-substring-no-properties
                                         (point) (point-max))
                                        "\n"))
                 (when (string-match "\\`> ?" l)
                   (push (substring l (match-end 0)) lines)))
               (string-join (nreverse lines) "\n"))))))
    (list :draft t
          :subject (message-fetch-field "subject")
          :from (message-fetch-field "to")
          :message-id (message-fetch-field "in-reply-to")
          :body source)))

(defun buildd-reply--article ()
  "The buildd mail to answer, read from the current mail reader buffer.
A plist (:subject :from :reply-to :message-id :references :body),
with :draft t when the current buffer is a reply being composed."
  (cond
   ((derived-mode-p 'message-mode) (buildd-reply--draft-article))
   ((derived-mode-p 'gnus-summary-mode)
    (gnus-summary-select-article)
    (buildd-reply--parse-text (buildd-reply--gnus-original)))
   ((derived-mode-p 'mu4e-view-mode)
    (buildd-reply--parse-file (plist-get (mu4e-message-at-point) :path)))
   ((derived-mode-p 'notmuch-show-mode)
    (buildd-reply--parse-file (notmuch-show-get-filename)))
   ((derived-mode-p 'rmail-mode)
    (buildd-reply--parse-text
     (rmail-apply-in-message nil (lambda ()
                                   (buffer-substring-no-properties
                                    (point-min) (point-max))))))
   ((derived-mode-p 'gnus-article-mode)
    (buildd-reply--parse-text (or (buildd-reply--gnus-original)
                                  (buildd-reply--buffer-text (current-buffer)))))
   (t (buildd-reply--parse-text (buildd-reply--buffer-text (current-buffer))))))

(defun buildd-reply--current-subject ()
  "The subject of the buildd mail in the current buffer, or nil."
  (ignore-errors
    (plist-get (cond
                ((derived-mode-p 'message-mode)
                 (list :subject (message-fetch-field "subject")))
                ((derived-mode-p 'gnus-summary-mode)
                 (with-temp-buffer
                   (insert (or (buildd-reply--gnus-original) ""))
                   (buildd-reply--parse-raw)))
                (t (buildd-reply--article)))
               :subject)))

;;;; Reading the log

(defun buildd-reply--paragraph-at (pos text)
  "The deb822 paragraph that starts at POS in TEXT, or nil."
  (let ((lines nil)
        (rest (split-string (substring text pos) "\n")))
    (while (and rest (string-match-p "\\`[ \t]*\\'" (car rest)))
      (pop rest))
    (when (and rest (string-match-p "\\`-+\\'" (car rest)))
      (pop rest)
      (while (and rest (string-match-p "\\`[ \t]*\\'" (car rest)))
        (pop rest)))
    (while (and rest
                (or (string-match-p "\\`[A-Za-z0-9][^: \t]*:" (car rest))
                    (and lines (string-match-p "\\`[ \t]+[^ \t]" (car rest)))))
      (push (pop rest) lines))
    (setq lines (nreverse lines))
    (when (and (cl-some (lambda (l) (string-match-p "\\`Files:" l)) lines)
               (cl-some (lambda (l) (string-match-p "\\`Source:" l)) lines))
      (concat (string-join lines "\n") "\n"))))

(defun buildd-reply-find-changes (log)
  "The .changes printed in the build LOG, as a string.
The last heading \"NAME.changes:\" followed by a paragraph with Source
and Files fields wins; a dashed underline after the heading (classic
sbuild) is skipped."
  (let ((found nil)
        (start 0)
        (heads nil))
    (while (string-match "^\\([^ \t\n]+\\.changes\\):[ \t]*$" log start)
      (push (match-end 0) heads)
      (setq start (match-end 0)))
    (while (and heads (not found))
      (setq found (buildd-reply--paragraph-at (pop heads) log)))
    (or found (user-error "No .changes found in the build log"))))

(defun buildd-reply--clean-dep (name op version)
  "One dependency NAME with OP and VERSION as wanna-build's dep-wait takes it.
Only >=, >> and > keep their version; the others leave the bare name."
  (let ((name (replace-regexp-in-string ":[a-z0-9-]+\\'" "" name)))
    (if (and op version (member op '(">=" ">>" ">")))
        (format "%s (%s %s)" name op (string-trim version))
      name)))

(defconst buildd-reply--dep-regexp
  (concat "\\([a-z0-9][a-z0-9+.-]*\\(?::[a-z0-9-]+\\)?\\)"
          "\\(?:[ \t]*([ \t]*\\([<>=]+\\)[ \t]*\\([^) \t]+\\)[ \t]*)\\)?")
  "A dependency \"name (op version)\"; groups 1 name, 2 op, 3 version.")

(defun buildd-reply--deps-in-list (str)
  "Dependencies in STR, a relation list as dpkg-checkbuilddeps prints it.
Of alternatives \"a | b\" the first is taken."
  (let ((deps nil)
        (start 0))
    (while (string-match (concat "[ \t,]*\\(|\\)?[ \t]*" buildd-reply--dep-regexp
                                 "\\(?:[ \t]*\\[[^]]*\\]\\)?\\(?:[ \t]*<[^>]*>\\)*")
                         str start)
      (unless (match-beginning 1)
        (push (buildd-reply--clean-dep (match-string 2 str) (match-string 3 str)
                                       (match-string 4 str))
              deps))
      (setq start (match-end 0)))
    (nreverse deps)))

(defun buildd-reply-missing-deps (log)
  "The missing build dependencies the build LOG names, as a dep-wait string.
Understands apt's \"The following packages have unmet dependencies:\"
block, dpkg-checkbuilddeps' and sbuild's \"Unmet build dependencies:\",
apt's \"has no installation candidate\", \"Unable to locate package\"
and \"Couldn't find package\", and classic sbuild's \"After installing,
the following source dependencies are still unsatisfied\".  Returns
nil when none is found."
  (let ((deps nil)
        (case-fold-search nil))
    (with-temp-buffer
      (insert log)
      (goto-char (point-min))
      (while (re-search-forward "The following packages have unmet dependencies:" nil t)
        (forward-line 1)
        (while (looking-at "^ +\\(.*\\)$")
          (let ((line (match-string 1)))
            (when (string-match (concat "\\(?:\\`\\| \\)\\(?:Pre-\\)?Depends: "
                                        buildd-reply--dep-regexp)
                                line)
              (push (buildd-reply--clean-dep (match-string 1 line) (match-string 2 line)
                                             (match-string 3 line))
                    deps)))
          (forward-line 1)))
      (goto-char (point-min))
      (while (re-search-forward "Unmet build dependencies: \\(.*\\)$" nil t)
        (setq deps (append (reverse (buildd-reply--deps-in-list (match-string 1))) deps)))
      (dolist (re '("^E: Package '?\\([^ ']+\\)'? has no installation candidate"
                    "^E: Unable to locate package \\(\\S-+\\)"
                    "^E: Couldn't find package \\(\\S-+\\)"))
        (goto-char (point-min))
        (while (re-search-forward re nil t)
          (push (buildd-reply--clean-dep (match-string 1) nil nil) deps)))
      (goto-char (point-min))
      (when (re-search-forward "^After installing, the following source dependencies" nil t)
        (forward-line 1)
        (while (re-search-forward
                "\\([a-z0-9][a-z0-9+.-]*\\)(inst [^ ]* ! \\([<>=]+\\) wanted \\([^ )]+\\))"
                (line-end-position) t)
          (push (buildd-reply--clean-dep (match-string 1) (match-string 2) (match-string 3))
                deps))))
    (when deps
      (string-join (delete-dups (nreverse deps)) ", "))))

(defun buildd-reply-new-version (log)
  "The newer version the build LOG names, or nil."
  (let ((case-fold-search nil))
    (cl-some (lambda (re)
               (and (string-match re log) (match-string 1 log)))
             buildd-reply-new-version-regexps)))

;;;; Signing

(defun buildd-reply--signer-keys (context)
  "The secret keys that sign, for the EasyPG CONTEXT; nil means the default."
  (let ((ids (or buildd-reply-signers mml-secure-openpgp-signers)))
    (when ids
      (or (cl-mapcan (lambda (id) (epg-list-keys context id t)) ids)
          (user-error "No secret key for %s" (string-join ids ", "))))))

(defun buildd-reply-clearsign (text)
  "TEXT clearsigned with the admin's OpenPGP key."
  (let ((context (epg-make-context 'OpenPGP t t)))
    (setf (epg-context-signers context) (buildd-reply--signer-keys context))
    (decode-coding-string
     (epg-sign-string context (encode-coding-string text 'utf-8) 'clear)
     'utf-8)))

(defvar-local buildd-reply--names nil
  "The line \"PKG_VERSION on ARCH (dist=DIST)\" the reply in this buffer is about.")

(defvar-local buildd-reply--kind nil
  "`keyword' or `changes': what the reply in this buffer carries.")

(defun buildd-reply--normalize (text)
  "TEXT with trailing blank lines removed and one final newline."
  (concat (replace-regexp-in-string "[ \t\n]+\\'" "" text) "\n"))

(defun buildd-reply--names-line (pkgv dist arch)
  "The last line of a signed keyword answer about PKGV in DIST for ARCH.
buildd-mail acts on a signed answer only for the package, version,
architecture and distribution this line names.  ARCH nil (a subject
naming none) leaves it out: \"PKG_VERSION (dist=DIST)\"."
  (if arch
      (format "%s on %s (dist=%s)" pkgv arch dist)
    (format "%s (dist=%s)" pkgv dist)))

(defun buildd-reply--with-names (text names)
  "TEXT ending in the line NAMES, added unless the last line already is.
Blank lines just before that line are dropped."
  (let ((text (buildd-reply--normalize text))
        (last (concat "\\(?:\\`\\|\n\\)[ \t\n]*" (regexp-quote names) "\n\\'")))
    (if (string-match last text)
        (concat (substring text 0 (match-beginning 0))
                (if (zerop (match-beginning 0)) "" "\n")
                names "\n")
      (concat text names "\n"))))

(defun buildd-reply--sign-body ()
  "Clearsign the body of the reply in the current buffer before it is sent.
Keyword replies get their \"PKG_VERSION on ARCH (dist=DIST)\" line back if
it was removed."
  (when buildd-reply--kind
    (save-excursion
      (message-goto-body)
      (let* ((start (point))
             (text (buffer-substring-no-properties start (point-max))))
        (unless (string-match-p "\\`-----BEGIN PGP SIGNED MESSAGE-----" text)
          (setq text (if (eq buildd-reply--kind 'keyword)
                         (buildd-reply--with-names text buildd-reply--names)
                       (buildd-reply--normalize text)))
          (let ((signed (buildd-reply-clearsign text)))
            (delete-region start (point-max))
            (goto-char start)
            (insert signed)))))))

;;;; Composing

(defun buildd-reply--set-buffer (buffer-or-name)
  "Make BUFFER-OR-NAME current without showing it; create it if needed."
  (set-buffer (get-buffer-create buffer-or-name)))

(defun buildd-reply--draft (article)
  "A message-mode buffer answering ARTICLE, current, with an empty body."
  (unless (plist-get article :draft)
    (let* ((subject (plist-get article :subject))
           (id (plist-get article :message-id))
           (from (plist-get article :from)))
      (message-mail (or (plist-get article :reply-to) from)
                    (if (string-match-p "\\`[ \t]*[Rr][Ee]:" subject)
                        subject
                      (concat "Re: " subject))
                    (and id (list (cons 'In-Reply-To id))) nil
                    (and buildd-reply-send-immediately #'buildd-reply--set-buffer))
      ;; As Gnus does: message-mode makes References from these when the
      ;; mail is sent (a References header passed to `message-mail' is
      ;; dropped by its header setup).
      (setq message-reply-headers
            (make-full-mail-header 0 subject from nil id
                                   (plist-get article :references)))))
  (message-goto-body)
  (delete-region (point) (point-max))
  (current-buffer))

(defun buildd-reply--info (article)
  "The (KIND PKGV DIST ARCH) of ARTICLE's subject.
An error if it is no buildd mail."
  (or (buildd-reply--subject-info (plist-get article :subject))
      (user-error "Not a buildd mail: %s" (plist-get article :subject))))

(defun buildd-reply--reply (article kind body &optional edit point-at)
  "Answer ARTICLE with BODY, a `keyword' or `changes' reply (KIND).
Keyword bodies get the \"PKG_VERSION on ARCH (dist=DIST)\" line.  Send
it unless EDIT or `buildd-reply-send-immediately' is nil; then leave
point at the POINT-AT'th character of BODY (or after it)."
  (let* ((info (buildd-reply--info article))
         (names (buildd-reply--names-line (nth 1 info) (nth 2 info) (nth 3 info)))
         (text (if (eq kind 'keyword) (concat body "\n" names "\n") body)))
    (let ((origin (current-buffer)))
      (set-buffer (buildd-reply--draft article))
      (setq buildd-reply--names names
            buildd-reply--kind kind)
      (add-hook 'message-send-hook #'buildd-reply--sign-body nil t)
      (let ((start (point)))
        (insert text)
        (if (and buildd-reply-send-immediately (not edit))
            (progn
              (message-send-and-exit)
              (when (buffer-live-p origin)
                (set-buffer origin)))
          (goto-char (if point-at (+ start point-at) (point-max)))
          (unless (eq (window-buffer) (current-buffer))
            (pop-to-buffer-same-window (current-buffer))))))))

(defun buildd-reply--keyword (keyword &optional edit point-at)
  "Answer the current buildd mail with KEYWORD text.
EDIT and POINT-AT as for `buildd-reply--reply'."
  (buildd-reply--reply (buildd-reply--article) 'keyword keyword edit point-at))

;;;; Commands

(defun buildd-reply-ok (&optional edit)
  "Answer with the .changes from the log, clearsigned (\"Should I build\": build).
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (let ((article (buildd-reply--article)))
    (if (eq (car (buildd-reply--info article)) 'should-build)
        (buildd-reply--reply article 'keyword "build" edit)
      (buildd-reply--reply article 'changes
                           (buildd-reply-find-changes (plist-get article :body))
                           edit))))

(defun buildd-reply-retry (&optional edit)
  "Answer \"retry\": build the package again.
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (buildd-reply--keyword "retry" edit))

(defun buildd-reply-fail ()
  "Answer \"fail\", leaving point where the reason goes.
The reply is signed when it is sent."
  (interactive)
  (buildd-reply--keyword "fail\n" t (length "fail\n")))

(defun buildd-reply-dep-wait (&optional edit)
  "Answer \"dep-wait\" with the missing dependencies gathered from the log.
When the log names none, leave point where they go.  With prefix
argument EDIT, compose without sending."
  (interactive "P")
  (let* ((article (buildd-reply--article))
         (deps (buildd-reply-missing-deps (plist-get article :body))))
    (if deps
        (buildd-reply--reply article 'keyword (concat "dep-wait " deps) edit)
      (buildd-reply--reply article 'keyword "dep-wait " t (length "dep-wait ")))))

(defun buildd-reply-giveback (&optional edit)
  "Answer \"giveback\": give the package back to the queue.
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (buildd-reply--keyword "giveback" edit))

(defun buildd-reply-manual (&optional edit)
  "Answer \"manual\": the admin finishes the package by hand.
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (buildd-reply--keyword "manual" edit))

(defun buildd-reply-newvers (&optional edit)
  "Answer \"newvers VERSION\" with the newer version the log names.
When the log names none, leave point where it goes.  With prefix
argument EDIT, compose without sending."
  (interactive "P")
  (let* ((article (buildd-reply--article))
         (version (buildd-reply-new-version (plist-get article :body))))
    (if version
        (buildd-reply--reply article 'keyword (concat "newvers " version) edit)
      (buildd-reply--reply article 'keyword "newvers " t (length "newvers ")))))

(defun buildd-reply-not-for-us (&optional edit)
  "Answer \"not-for-us\": the package is not built on this architecture.
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (buildd-reply--keyword "not-for-us" edit))

(defun buildd-reply-purge (&optional edit)
  "Answer \"purge\": delete the package's build directory.
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (buildd-reply--keyword "purge" edit))

;;;; More answers

(defun buildd-reply-upload-remove (&optional edit)
  "Answer \"upload-rem\": take the package out of the upload queue.
With prefix argument EDIT, compose without sending."
  (interactive "P")
  (buildd-reply--keyword "upload-rem" edit))

(defun buildd-reply-edit-manual-source-deps ()
  "Compose a dep-wait answer whose dependency list is edited by hand.
The list is prefilled with the unmet build dependencies the log names
\(empty when it names none); point is left on it and the answer is
sent, signed, only when you send it.  The classic command edited the
hand-written source dependencies wanna-build used in place of a
source's own; today every source carries its Build-Depends, and what
an admin writes by hand is the list a package waits for."
  (interactive)
  (let* ((article (buildd-reply--article))
         (deps (or (buildd-reply-missing-deps (plist-get article :body)) "")))
    (buildd-reply--reply article 'keyword (concat "dep-wait " deps) t
                         (length "dep-wait "))))

;;;; Bug reports

(defun buildd-reply--log-field (log field)
  "The value of FIELD in the last summary paragraph of LOG, or nil."
  (let ((case-fold-search nil)
        (start 0)
        (value nil))
    (while (string-match (concat "^" (regexp-quote field) ": *\\(.*\\)$") log start)
      (setq value (match-string 1 log)
            start (match-end 0)))
    value))

(defun buildd-reply--log-tail (log lines)
  "The last LINES lines of LOG before its summary block."
  (let* ((end (or (and (string-match "^\\(?:\\[[^]]*\\] \\)?| \\(?:Cleanup\\|Summary\\) " log)
                       (match-beginning 0))
                  (length log)))
         (all (split-string (string-trim-right (substring log 0 end)) "\n"))
         (all (cl-remove-if (lambda (l) (string-match-p "\\`\\(?:\\[[^]]*\\] \\)?[+|]" l)) all))
         (tail (last all lines)))
    ;; Blank runs become one empty line; none at the start.
    (string-trim
     (replace-regexp-in-string "\n\\(?:[ \t]*\n\\)+" "\n\n"
                               (string-join (mapcar #'string-trim-right tail) "\n"))
     "\n+" "\n+")))

(defun buildd-reply--bug-records ()
  "The records of `buildd-reply-bug-record-file': an alist."
  (when (file-readable-p buildd-reply-bug-record-file)
    (with-temp-buffer
      (insert-file-contents buildd-reply-bug-record-file)
      (ignore-errors (read (current-buffer))))))

(defun buildd-reply--bug-key (pkgv dist arch)
  "The key of the record of a report about PKGV in DIST for ARCH."
  (concat pkgv " " dist " " arch))

(defun buildd-reply--bug-record (key record)
  "Remember RECORD for KEY (see `buildd-reply--bug-key') in the record file."
  (let ((records (cons (cons key record)
                       (assoc-delete-all key (buildd-reply--bug-records)))))
    (with-temp-file buildd-reply-bug-record-file
      (let ((print-length nil) (print-level nil))
        (prin1 (seq-take records 1000) (current-buffer))))))

(defun buildd-reply-bug ()
  "Compose a bug report about the failed build in the current log mail.
The report goes to `buildd-reply-bug-address' with the package, its
version and `buildd-reply-bug-severity' as pseudo-headers, the failure
stage and reason, the end of the log and a permanent link to the whole
log (`buildd-reply-log-url-format'); it is left for editing.  The log
mail it is about is recorded, so that \\[buildd-reply-bug-ack-append] in the
tracker's acknowledgement answers it."
  (interactive)
  (let* ((article (buildd-reply--article))
         (info (buildd-reply--info article))
         (pkgv (nth 1 info))
         (dist (nth 2 info))
         (log (plist-get article :body))
         (name (car (split-string pkgv "_")))
         (version (cadr (split-string pkgv "_")))
         (arch (or (nth 3 info)
                   (buildd-reply--log-field log "Architecture")
                   (buildd-reply--log-field log "Machine Architecture")
                   "unknown"))
         (stage (buildd-reply--log-field log "Fail-Stage"))
         (reason (buildd-reply--log-field log "Fail-Reason"))
         (failure (truncate-string-to-width
                   (or reason (and stage (format "fails at %s" stage)) "fails to build")
                   72 nil nil "...")))
    (unless (eq (car info) 'log)
      (user-error "Not a build log: %s" (plist-get article :subject)))
    (buildd-reply--bug-record (buildd-reply--bug-key pkgv dist arch)
                              (list :to (or (plist-get article :reply-to)
                                            (plist-get article :from))
                                    :subject (plist-get article :subject)
                                    :message-id (plist-get article :message-id)))
    (message-mail buildd-reply-bug-address
                  (format "%s (%s): FTBFS on %s: %s" pkgv dist arch failure))
    (message-goto-body)
    (delete-region (point) (point-max))
    (insert (format "Package: src:%s\nVersion: %s\nSeverity: %s\nTags: ftbfs\n\n"
                    name version buildd-reply-bug-severity)
            (format "%s %s fails to build from source on %s in %s.\n\n" name version arch dist)
            (if stage (format "Fail-Stage: %s\n" stage) "")
            (if reason (format "Fail-Reason: %s\n" reason) "")
            (format "\nThe end of the build log:\n\n%s\n\n"
                    (replace-regexp-in-string
                     "^\\(.\\)" "  \\1" (buildd-reply--log-tail log buildd-reply-bug-log-lines)))
            (format "The whole build log:\n%s\n"
                    (format-spec buildd-reply-log-url-format
                                 `((?p . ,pkgv) (?d . ,dist) (?a . ,arch)))))
    (message-goto-body)
    (current-buffer)))

(defconst buildd-reply--ack-regexp
  "Bug#\\([0-9]+\\): Acknowledgement (\\(\\S-+_\\S-+\\) (\\([^)[:space:]]+\\))\\(?::[ \t\n]+FTBFS[ \t\n]+on[ \t\n]+\\([[:alnum:]_-]+\\)\\)?"
  "The tracker's acknowledgement of a report `buildd-reply-bug' composed.
Group 1 is the bug number, 2 PKG_VERSION, 3 the distribution, 4 the
architecture (the report's \"FTBFS on ARCH\").")

(defun buildd-reply-bug-ack-append (&optional edit)
  "Answer the buildd with \"fail\" and \"(see #NNN)\" from a bug acknowledgement.
The current mail is the tracker's acknowledgement of a report composed
by `buildd-reply-bug'; the answer, signed, goes to the buildd that sent
the log, as a reply to that log mail.  With prefix argument EDIT,
compose without sending."
  (interactive "P")
  (let* ((ack (buildd-reply--article))
         (subject (buildd-reply--strip-re (or (plist-get ack :subject) ""))))
    (unless (string-match buildd-reply--ack-regexp subject)
      (user-error "Not a bug acknowledgement of a build failure: %s" subject))
    (let* ((bug (match-string 1 subject))
           (pkgv (match-string 2 subject))
           (dist (match-string 3 subject))
           (arch (match-string 4 subject))
           (records (buildd-reply--bug-records))
           ;; A record made before records named the architecture has
           ;; the key "PKG_VERSION DIST".
           (record (cdr (or (and arch (assoc (buildd-reply--bug-key pkgv dist arch) records))
                            (assoc (concat pkgv " " dist) records)))))
      (unless record
        (user-error "No log mail of %s (%s) recorded by buildd-reply-bug; answer the log with C-c C-f" pkgv dist))
      (buildd-reply--reply (list :subject (plist-get record :subject)
                                 :from (plist-get record :to)
                                 :message-id (plist-get record :message-id))
                           'keyword (format "fail\n(see #%s)" bug) edit))))

;;;; The minor mode

(defvar buildd-reply-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-c C-o") #'buildd-reply-ok)
    (define-key map (kbd "C-c C-r") #'buildd-reply-retry)
    (define-key map (kbd "C-c C-f") #'buildd-reply-fail)
    (define-key map (kbd "C-c C-d") #'buildd-reply-dep-wait)
    (define-key map (kbd "C-c M-g") #'buildd-reply-giveback)
    (define-key map (kbd "C-c C-m") #'buildd-reply-manual)
    (define-key map (kbd "C-c C-n") #'buildd-reply-newvers)
    (define-key map (kbd "C-c M-n") #'buildd-reply-not-for-us)
    (define-key map (kbd "C-c C-]") #'buildd-reply-upload-remove)
    (define-key map (kbd "C-c C-p") #'buildd-reply-purge)
    (define-key map (kbd "C-c C-s") #'buildd-reply-edit-manual-source-deps)
    (define-key map (kbd "C-c C-b") #'buildd-reply-bug)
    (define-key map (kbd "C-c C-a") #'buildd-reply-bug-ack-append)
    map)
  "Keys of `buildd-reply-mode'.")

;;;###autoload
(define-minor-mode buildd-reply-mode
  "Answer buildd mails with two keystrokes.

\\{buildd-reply-mode-map}"
  :lighter " buildd"
  :keymap buildd-reply-mode-map)

;;;###autoload
(defun buildd-reply-maybe-enable ()
  "Turn `buildd-reply-mode' on when the current buffer shows a buildd mail.
A bug tracker's acknowledgement of a build failure report counts too.
In a Gnus article buffer, the summary buffer follows too."
  (let* ((subject (buildd-reply--current-subject))
         (on (if (or (buildd-reply--subject-info subject)
                     (and subject (string-match-p buildd-reply--ack-regexp subject)))
                 1 -1)))
    (buildd-reply-mode on)
    (when (and (derived-mode-p 'gnus-article-mode)
               (boundp 'gnus-summary-buffer)
               (buffer-live-p (get-buffer gnus-summary-buffer)))
      (with-current-buffer gnus-summary-buffer
        (when (derived-mode-p 'gnus-summary-mode)
          (buildd-reply-mode on))))))

;;;###autoload
(progn
  (add-hook 'message-setup-hook #'buildd-reply-maybe-enable)
  (with-eval-after-load 'gnus-art
    (add-hook 'gnus-article-prepare-hook #'buildd-reply-maybe-enable))
  (with-eval-after-load 'rmail
    (add-hook 'rmail-show-message-hook #'buildd-reply-maybe-enable))
  (with-eval-after-load 'mu4e-view
    (add-hook 'mu4e-view-mode-hook #'buildd-reply-maybe-enable))
  (with-eval-after-load 'notmuch-show
    (add-hook 'notmuch-show-hook #'buildd-reply-maybe-enable)))

(provide 'buildd-reply)

;;; buildd-reply.el ends here
