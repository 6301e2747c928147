#!/bin/bash
# make-corpus.sh regenerates the hostile corpus of buildd-mail (this
# directory): the admin keyring and every mail TestHostileCorpus
# (../../hostile_test.go) pipes into the real binary. No arguments.
#
# Keys and clearsigned texts are made by real GnuPG in a throw-away
# GNUPGHOME, dates fixed with --faked-system-time; what gpg refuses to do
# (sign with an encryption-only or a certification-only key, re-encode a
# signature packet) is done by gen/main.go with ProtonMail/go-crypto.
# Everything is deterministic except key material and signature bytes.
#
# Dates (UTC): keys are made 2025-01-01 (the expired key 2026-01-01, valid
# one day); replies are signed 2026-06-02, the expired key's 2026-01-01
# 12:00, the "future" one 2099-01-01. The test records the log mails as sent
# 2026-06-01 (oldkey's 2025-12-31) and sets reply_window = 36500.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mod=$(cd "$here/../.." && pwd) # buildd-mail/
work=$(mktemp -d)
trap 'gpgconf --homedir "$work/gnupg" --kill all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME" "$work/sig"

q() { gpg --batch --pinentry-mode loopback --passphrase '' --quiet "$@" 2>>"$work/gpg.log"; }
fpr() { q --with-colons --fingerprint "$1@example.org" | awk -F: '/^fpr/ { print $10; exit }'; }
uid() { echo "$(tr '[:lower:]' '[:upper:]' <<<"${1:0:1}")${1:1} <$1@example.org>"; }
# genkey NAME ALGO USAGE EXPIRE [TIME]
genkey() { q --faked-system-time "${5:-20250101T000000}" --quick-gen-key "$(uid "$1")" "$2" "$3" "$4"; }
# sign KEY TIME DIGEST TEXT OUT: clearsign work/text/TEXT.txt into work/sig/OUT.asc
sign() { q --faked-system-time "$2" --local-user "$1@example.org" --digest-algo "$3" --clearsign -o "$work/sig/$5.asc" "$work/text/$4.txt"; }

cd "$mod"
# Old output goes; the generator's source and this script stay.
find "$here" -mindepth 1 -maxdepth 1 ! -name gen ! -name make-corpus.sh ! -name README.md -exec rm -rf {} +

go run ./testdata/hostile/gen texts "$work" "$here"

# --- keys ---
genkey admin ed25519 sign never
genkey second ed25519 sign never # admin2
genkey stranger ed25519 sign never # not in the admin keyring
genkey expired ed25519 sign 1d 20260101T000000
genkey revoked ed25519 sign never
genkey subrevoked ed25519 cert never
q --faked-system-time 20250101T000000 --quick-add-key "$(fpr subrevoked)" ed25519 sign never
genkey encronly ed25519 cert never
q --faked-system-time 20250101T000000 --quick-add-key "$(fpr encronly)" rsa2048 encr never
genkey certonly ed25519 cert never

# --- signed texts (before any revocation) ---
T=20260602T000000
sign admin $T SHA256 giveback-hello giveback-hello
sign admin $T SHA256 retry-hello retry-hello
sign admin $T SHA256 fail-utf8 fail-utf8
sign admin $T SHA256 changes-hello changes-hello
sign second $T SHA256 giveback-shared-bookworm giveback-shared-bookworm
sign second $T SHA256 giveback-shared-nodist giveback-shared-nodist
sign stranger $T SHA256 retry-hello retry-hello.stranger
sign expired 20260101T120000 SHA256 retry-oldkey retry-oldkey.expired
sign revoked $T SHA256 retry-hello retry-hello.revoked
sign subrevoked $T SHA256 retry-hello retry-hello.subrevoked
sign admin $T SHA1 retry-hello retry-hello.sha1
sign admin 20990101T000000 SHA256 retry-hello retry-hello.future
q --armor --export-secret-keys encronly@example.org >"$work/encronly.sec"
q --armor --export-secret-keys certonly@example.org >"$work/certonly.sec"

# --- revocations ---
# The primary key of "revoked", with the certificate gpg stored at creation.
sed 's/^:-----/-----/' "$GNUPGHOME/openpgp-revocs.d/$(fpr revoked).rev" | q --import
# The signing subkey of "subrevoked" (reason: compromised), after the
# signature was made.
printf 'key 1\nrevkey\ny\n1\nsubkey compromised (hostile corpus)\n\ny\nsave\n' |
	q --faked-system-time 20260603T000000 --command-fd 0 --edit-key "$(fpr subrevoked)"
q --with-colons --list-keys revoked@example.org | grep -q '^pub:r:' || { echo "revoked: not revoked" >&2; exit 1; }
q --with-colons --list-keys subrevoked@example.org | grep -q '^sub:r:' || { echo "subrevoked: subkey not revoked" >&2; exit 1; }

# --- the admin keyring: every key but the stranger's ---
q --armor --export admin@example.org second@example.org expired@example.org revoked@example.org \
	subrevoked@example.org encronly@example.org certonly@example.org >"$here/admin_keyring.asc"

go run ./testdata/hostile/gen mails "$work" "$here"
echo "hostile corpus written to $here ($(find "$here" -type f -exec cat {} + | wc -c) bytes)"
