package verify

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"buildd/buildd-mail/reply"
)

var clearBegin = []byte("-----BEGIN PGP SIGNED MESSAGE-----")

// Clearsigned verifies an inline clearsigned body and returns the signed
// text (dash-escaping undone); Result.Block is the block it verified. The
// block starts at the first BEGIN line that starts a line and ends where
// its armored signature ends (not at an END string inside the text).
// Outside the block only blank lines, quoted lines and a quote's
// attribution line are allowed: anything else could change the meaning of
// the signed text and is refused.
func (k *Keyring) Clearsigned(body []byte, now time.Time) (string, *Result, error) {
	i := bytes.Index(body, clearBegin)
	for i > 0 && body[i-1] != '\n' {
		j := bytes.Index(body[i+1:], clearBegin)
		if j < 0 {
			i = -1
			break
		}
		i += 1 + j
	}
	if i < 0 {
		return "", nil, &Error{CheckUnsigned, "the reply is not OpenPGP-signed. Sign it (clearsigned, or PGP/MIME)\nwith an admin's key; buildd-reply.el does this."}
	}
	b, rest := clearsign.Decode(body[i:])
	if b == nil {
		return "", nil, &Error{CheckMalformed, "the clearsigned block cannot be read (broken armor?). Sign the reply again."}
	}
	if err := checkOutside(body[:i], "before"); err != nil {
		return "", nil, err
	}
	if err := checkOutside(rest, "after"); err != nil {
		return "", nil, err
	}
	sig, err := io.ReadAll(b.ArmoredSignature.Body)
	if err != nil {
		return "", nil, &Error{CheckMalformed, fmt.Sprintf("the signature's armor cannot be read: %v", err)}
	}
	r, err := k.Detached(b.Bytes, sig, now)
	if err != nil {
		return "", nil, err
	}
	block := bytes.TrimRight(body[i:len(body)-len(rest)], "\r\n")
	block = bytes.ReplaceAll(block, []byte("\r\n"), []byte("\n"))
	r.Block = append(block, '\n')
	return string(b.Plaintext), r, nil
}

func checkOutside(b []byte, where string) error {
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) == "" || reply.IsQuoteLine(l) {
			continue
		}
		if len(l) > 200 {
			l = l[:200] + "..."
		}
		return &Error{CheckOutside, fmt.Sprintf("the mail has text %s the signed part:\n  %q\nOnly quoted lines (\"> ...\") may stand outside it. Put everything\nthat matters inside the signed text and sign again.", where, l)}
	}
	return nil
}
