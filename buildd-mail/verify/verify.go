// Package verify owns the OpenPGP checks of admins' replies with
// ProtonMail/go-crypto: the admin keyring (armored or binary, any number of
// keys and armored blocks in one file), inline clearsigned text and detached
// PGP/MIME signatures, and the policy: the signer must be in the keyring,
// neither expired nor revoked, the hash SHA-256 or stronger, and no text
// outside the signed block may change what the mail says. It also
// remembers every signature it accepted (Memory), so none is used twice.
package verify

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Keyring is the admins' public keys.
type Keyring struct {
	Path     string
	Entities openpgp.EntityList
}

// LoadKeyring reads path: binary (gpg --export) or armored, where the
// file may hold several armored blocks one after another (cat a.asc b.asc).
func LoadKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("admin_keyring: %w", err)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("admin_keyring %s: %w", path, err)
	}
	k.Path = path
	return k, nil
}

var (
	armorBegin = []byte("-----BEGIN PGP ")
	armorEnd   = []byte("-----END PGP ")
)

// ParseKeyring reads a keyring's bytes (see LoadKeyring).
func ParseKeyring(data []byte) (*Keyring, error) {
	k := &Keyring{}
	if !bytes.Contains(data, armorBegin) {
		el, err := openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("binary keyring: %w", err)
		}
		k.Entities = el
	} else {
		// armor.Decode reads one block only: cut the file at every END line
		// and read each block on its own.
		rest := data
		n := 0
		for {
			i := bytes.Index(rest, armorBegin)
			if i < 0 {
				break
			}
			rest = rest[i:]
			j := bytes.Index(rest, armorEnd)
			if j < 0 {
				return nil, fmt.Errorf("armored block %d: no END line", n+1)
			}
			end := j + bytes.IndexByte(rest[j:], '\n')
			if end < j {
				end = len(rest)
			}
			block := rest[:end]
			rest = rest[end:]
			n++
			b, err := armor.Decode(bytes.NewReader(block))
			if err != nil {
				return nil, fmt.Errorf("armored block %d: %w", n, err)
			}
			if b.Type != openpgp.PublicKeyType {
				return nil, fmt.Errorf("armored block %d: %q, want %q", n, b.Type, openpgp.PublicKeyType)
			}
			el, err := openpgp.ReadKeyRing(b.Body)
			if err != nil {
				return nil, fmt.Errorf("armored block %d: %w", n, err)
			}
			k.Entities = append(k.Entities, el...)
		}
	}
	if len(k.Entities) == 0 {
		return nil, errors.New("no keys")
	}
	return k, nil
}

// Result is an accepted signature.
type Result struct {
	Fingerprint string // the signer's primary key, upper-case hex
	SigningKey  string // the (sub)key that made the signature
	UID         string
	Created     time.Time
	Hash        crypto.Hash
	// ID identifies the signature itself (SHA-256 of its packet): the same
	// ID twice is a replay.
	ID string
}

// Error is a refused signature; Check names the check that failed and Msg
// says what to do about it.
type Error struct {
	Check string
	Msg   string
}

func (e *Error) Error() string { return e.Check + ": " + e.Msg }

// Checks (Error.Check values).
const (
	CheckUnsigned  = "not signed"
	CheckMalformed = "malformed signature"
	CheckHash      = "weak hash"
	CheckUnknown   = "unknown key"
	CheckBad       = "bad signature"
	CheckExpired   = "expired key"
	CheckRevoked   = "revoked key"
	CheckOutside   = "text outside the signed part"
)

var weak = map[crypto.Hash]bool{crypto.MD5: true, crypto.SHA1: true, crypto.RIPEMD160: true, crypto.SHA224: true}

// Detached verifies sig (armored or binary) over signed at time now.
func (k *Keyring) Detached(signed, sig []byte, now time.Time) (*Result, error) {
	body := sig
	if bytes.Contains(sig, armorBegin) {
		b, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return nil, &Error{CheckMalformed, fmt.Sprintf("the signature's armor cannot be read: %v", err)}
		}
		if b.Type != openpgp.SignatureType {
			return nil, &Error{CheckMalformed, fmt.Sprintf("armored %q, want %q", b.Type, openpgp.SignatureType)}
		}
		if body, err = io.ReadAll(b.Body); err != nil {
			return nil, &Error{CheckMalformed, fmt.Sprintf("the signature's armor cannot be read: %v", err)}
		}
	}
	p, err := packet.NewReader(bytes.NewReader(body)).Next()
	if err != nil {
		return nil, &Error{CheckMalformed, fmt.Sprintf("no signature packet: %v", err)}
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return nil, &Error{CheckMalformed, fmt.Sprintf("a %T where a signature packet belongs", p)}
	}
	if s.SigType != packet.SigTypeBinary && s.SigType != packet.SigTypeText {
		return nil, &Error{CheckMalformed, fmt.Sprintf("signature type %#x is not a document signature", s.SigType)}
	}
	if weak[s.Hash] {
		return nil, &Error{CheckHash, fmt.Sprintf("the signature uses %v, which is refused. Sign with SHA-256 or stronger\n(gpg: personal-digest-preferences SHA512 SHA384 SHA256, or --digest-algo SHA256).", s.Hash)}
	}
	keyID := "unknown"
	if s.IssuerFingerprint != nil {
		keyID = strings.ToUpper(hex.EncodeToString(s.IssuerFingerprint))
	} else if s.IssuerKeyId != nil {
		keyID = fmt.Sprintf("%016X", *s.IssuerKeyId)
	}
	if s.IssuerKeyId == nil || len(k.Entities.KeysByIdUsage(*s.IssuerKeyId, packet.KeyFlagSign)) == 0 {
		return nil, &Error{CheckUnknown, fmt.Sprintf("the mail is signed by key %s, which is not in the admin keyring\n(admin_keyring %s). Sign with an admin's key, or have the key added.", keyID, k.Path)}
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	vs, signer, err := openpgp.VerifyDetachedSignature(k.Entities, bytes.NewReader(signed), bytes.NewReader(body), cfg)
	if signer == nil || vs == nil {
		return nil, &Error{CheckBad, fmt.Sprintf("the signature by key %s does not match the text (%v):\nthe text was changed after signing, or mangled in transport.\nSign the reply again and send it unchanged.", keyID, err)}
	}
	fpr := strings.ToUpper(hex.EncodeToString(signer.PrimaryKey.Fingerprint))
	switch {
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return nil, &Error{CheckRevoked, fmt.Sprintf("key %s is revoked. Sign with a valid admin key.", fpr)}
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return nil, &Error{CheckExpired, fmt.Sprintf("key %s has expired. Extend it (gpg --quick-set-expire) and\nupdate admin_keyring, or sign with a valid admin key.", fpr)}
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return nil, &Error{CheckExpired, fmt.Sprintf("the signature by key %s has expired. Sign the reply again.", fpr)}
	case err != nil:
		return nil, &Error{CheckBad, fmt.Sprintf("signature by key %s refused: %v", fpr, err)}
	}
	if vs.CreationTime.After(now.Add(10 * time.Minute)) {
		return nil, &Error{CheckBad, fmt.Sprintf("the signature is dated %s, in the future. Check the signing host's clock.", vs.CreationTime.UTC().Format(time.RFC3339))}
	}
	sum := sha256.Sum256(body)
	r := &Result{
		Fingerprint: fpr,
		SigningKey:  fmt.Sprintf("%016X", *s.IssuerKeyId),
		Created:     vs.CreationTime,
		Hash:        vs.Hash,
		ID:          hex.EncodeToString(sum[:]),
	}
	if id := signer.PrimaryIdentity(); id != nil {
		r.UID = id.Name
	}
	return r, nil
}
