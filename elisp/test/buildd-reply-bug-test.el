;;; buildd-reply-bug-test.el --- buildd-reply's bug reports, upload-rem and source deps  -*- lexical-binding: t; -*-

;;; Commentary:

;; The admin overview's "other Emacs actions", in every reader context
;; of buildd-reply-test: C-c C-s (the dependencies of a dep-wait, edited
;; by hand), C-c C-b (a bug report from a real failed log of our buildd)
;; and C-c C-a (the tracker's acknowledgement turned into the signed
;; "fail (see #NNN)").  C-c C-] (upload-rem) is one of the keyword
;; answers of buildd-reply-test.

;;; Code:

(require 'ert)
(require 'buildd-reply-test)

(ert-deftest buildd-reply-bug-test-manual-source-deps ()
  "C-c C-s leaves the dep-wait answer, prefilled from the log, for editing."
  (dolist (c '(("log-failed-depwait.mail" "frobnicate_2.4-1"
                "libfoo-dev (>= 1.2), libbar-dev, libbaz-dev"
                "<20251121080245.5678.frobnicate@build-amd64.example.org>")
               ("log-failed-newvers.mail" "hello_1.0-1" ""
                "<20251121100003.42.hello@build-amd64.example.org>")))
    (dolist (ctx buildd-reply-test-contexts)
      (buildd-reply-test-with-env
        (funcall ctx (nth 0 c) (lambda () (execute-kbd-macro (kbd "C-c C-s"))))
        (should (derived-mode-p 'message-mode))
        (should (null (buildd-reply-test-sent)))
        (should (looking-back "^dep-wait " (line-beginning-position)))
        (should (looking-at (concat (regexp-quote (nth 2 c)) "$")))
        (end-of-line)
        (insert (if (string-empty-p (nth 2 c)) "libfixed-dev (>= 2)" ", libextra-dev"))
        (message-send-and-exit)
        (buildd-reply-test-check-reply
         (car (buildd-reply-test-sent))
         (concat "Log for failed build of " (nth 1 c) " (dist=bookworm)")
         (nth 3 c)
         (concat "dep-wait "
                 (if (string-empty-p (nth 2 c)) "libfixed-dev (>= 2)" (concat (nth 2 c) ", libextra-dev"))
                 "\n" (nth 1 c) " (dist=bookworm)\n"))))))

(defun buildd-reply-bug-test-report (ctx)
  "Compose the bug report on the real failed log in reader CTX; return the draft's text."
  (funcall ctx "log-failed-real.mail" (lambda () (execute-kbd-macro (kbd "C-c C-b"))))
  (should (derived-mode-p 'message-mode))
  (should (null (buildd-reply-test-sent)))
  (buffer-substring-no-properties (point-min) (point-max)))

(ert-deftest buildd-reply-bug-test-report-from-real-log ()
  "C-c C-b: the report's headers and body come from the real failed log."
  (dolist (ctx buildd-reply-test-contexts)
    (buildd-reply-test-with-env
      (buildd-reply-test-with-bug-record
        (let* ((buildd-reply-log-url-format "https://buildd.example.net/log/%d/%a/%p")
               (draft (buildd-reply-bug-test-report ctx)))
          (should (equal (message-fetch-field "to") "submit@bugs.debian.org"))
          (should (equal (message-fetch-field "subject")
                         "tiny-missing_1.0 (bookworm): FTBFS on amd64: unmet build dependencies of tiny-missing_1.0: libbuildd-missing-dev (..."))
          (should (string-match-p "^Package: src:tiny-missing\nVersion: 1\\.0\nSeverity: serious\nTags: ftbfs\n\n" draft))
          (should (string-match-p "^tiny-missing 1\\.0 fails to build from source on amd64 in bookworm\\.$" draft))
          (should (string-match-p "^Fail-Stage: install-deps$" draft))
          (should (string-match-p "^Fail-Reason: unmet build dependencies of tiny-missing_1\\.0: libbuildd-missing-dev (>= 2)$" draft))
          (should (string-match-p "^  E: unmet build dependencies of tiny-missing_1\\.0: libbuildd-missing-dev (>= 2)$" draft))
          (should-not (string-match-p "^  .*Deleted working snapshot" draft))
          (should-not (string-match-p "^[ \t]+$" draft))
          (should-not (string-match-p "\n\n\n" draft))
          (should (string-match-p "^https://buildd\\.example\\.net/log/bookworm/amd64/tiny-missing_1\\.0$" draft))
          (message-send-and-exit)
          (let ((sent (car (buildd-reply-test-sent))))
            (should (equal (buildd-reply-test-header sent "to") "submit@bugs.debian.org"))
            (should-not (string-match-p "BEGIN PGP" sent)))
          (let ((r (cdr (assoc "tiny-missing_1.0 bookworm amd64" (buildd-reply--bug-records)))))
            (should (equal (plist-get r :message-id)
                           "<20261121075930.1.tiny-missing@build-amd64.example.org>"))
            (should (string-match-p "buildd-bookworm@build-amd64\\.example\\.org" (plist-get r :to)))))))))

(ert-deftest buildd-reply-bug-test-ack-append ()
  "C-c C-a in the tracker's acknowledgement: the signed fail (see #NNN), to the buildd."
  (dolist (ctx buildd-reply-test-contexts)
    (buildd-reply-test-bug-flow
     (lambda (fn) (funcall ctx "log-failed-depwait.mail" fn))
     (lambda (fn) (funcall ctx "bug-ack.mail" fn)))))

(ert-deftest buildd-reply-bug-test-ack-without-record ()
  "An acknowledgement of a report not composed here says what to do instead."
  (buildd-reply-test-with-env
    (buildd-reply-test-with-bug-record
      (should (string-match-p
               "No log mail of frobnicate_2.4-1 (bookworm)"
               (cadr (should-error
                      (buildd-reply-test-in-gnus "bug-ack.mail"
                                                 (lambda () (execute-kbd-macro (kbd "C-c C-a"))))
                      :type 'user-error))))
      (should (null (buildd-reply-test-sent))))))

(ert-deftest buildd-reply-bug-test-ack-old-record ()
  "A record made before records named the architecture still answers its log."
  (buildd-reply-test-with-env
    (buildd-reply-test-with-bug-record
      (with-temp-file buildd-reply-bug-record-file
        (prin1 '(("frobnicate_2.4-1 bookworm"
                  :to "buildd-bookworm@build-amd64.example.org"
                  :subject "Log for failed build of frobnicate_2.4-1 (dist=bookworm)"
                  :message-id "<20251121080245.5678.frobnicate@build-amd64.example.org>"))
               (current-buffer)))
      (buildd-reply-test-in-gnus "bug-ack.mail" (lambda () (execute-kbd-macro (kbd "C-c C-a"))))
      (buildd-reply-test-check-reply
       (car (buildd-reply-test-sent)) "Log for failed build of frobnicate_2.4-1 (dist=bookworm)"
       "<20251121080245.5678.frobnicate@build-amd64.example.org>"
       "fail\n(see #1234567)\nfrobnicate_2.4-1 (dist=bookworm)\n"))))

(provide 'buildd-reply-bug-test)

;;; buildd-reply-bug-test.el ends here
