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
	"strconv"
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
	// ID identifies the signature by what it commits to: the signer, the
	// hashed part of the signature packet (its version, type, algorithms,
	// creation time and every hashed subpacket) and the signed text. It
	// does not depend on how the packet is encoded (old or new packet
	// format, unhashed subpackets, armor), so a re-encoded copy of a used
	// signature has the ID of the original: the same ID twice is a replay.
	ID string
	// Block is the clearsigned block exactly as verified, from its BEGIN
	// line through its END line and a newline, LF line ends (Clearsigned
	// only).
	Block []byte
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
	CheckUsage     = "key not for signing"
	CheckBad       = "bad signature"
	CheckExpired   = "expired key"
	CheckRevoked   = "revoked key"
	CheckFuture    = "signature from the future"
	CheckOutside   = "text outside the signed part"
	CheckReplay    = "replay"
)

// clockSkew is how far in the future a signature may be dated (the signing
// host's clock running ahead).
const clockSkew = 10 * time.Minute

var weak = map[crypto.Hash]bool{crypto.MD5: true, crypto.SHA1: true, crypto.RIPEMD160: true, crypto.SHA224: true}

// Detached verifies sig (armored or binary) over signed at time now. The
// signature must be exactly one signature packet: anything else in the
// block (a second signature, a marker packet, trailing bytes) is refused.
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
		if body, err = io.ReadAll(io.LimitReader(b.Body, maxSignature+1)); err != nil {
			return nil, &Error{CheckMalformed, fmt.Sprintf("the signature's armor cannot be read: %v", err)}
		}
	}
	s, err := onePacket(body)
	if err != nil {
		return nil, err
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
	if s.IssuerKeyId == nil || len(k.Entities.KeysById(*s.IssuerKeyId)) == 0 {
		return nil, &Error{CheckUnknown, fmt.Sprintf("the mail is signed by key %s, which is not in the admin keyring\n(admin_keyring %s). Sign with an admin's key, or have the key added.", keyID, k.Path)}
	}
	if len(k.Entities.KeysByIdUsage(*s.IssuerKeyId, packet.KeyFlagSign)) == 0 {
		key := k.Entities.KeysById(*s.IssuerKeyId)[0]
		return nil, &Error{CheckUsage, fmt.Sprintf("the mail is signed by key %s of %s, which is in the admin keyring\nbut may not sign (its usage: %s). Sign with the key's signing (sub)key.",
			keyID, primaryFpr(key.Entity), usage(key.SelfSignature))}
	}
	if s.CreationTime.After(now.Add(clockSkew)) {
		return nil, &Error{CheckFuture, fmt.Sprintf("the signature by key %s is dated %s, in the future. Check the signing host's clock\nand sign again.", keyID, s.CreationTime.UTC().Format(time.RFC3339))}
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	vs, signer, err := openpgp.VerifyDetachedSignature(k.Entities, bytes.NewReader(signed), bytes.NewReader(body), cfg)
	if signer == nil || vs == nil {
		return nil, &Error{CheckBad, fmt.Sprintf("the signature by key %s does not match the text (%v):\nthe text was changed after signing, or mangled in transport.\nSign the reply again and send it unchanged.", keyID, err)}
	}
	fpr := primaryFpr(signer)
	bySubkey := signer.PrimaryKey.KeyId != *s.IssuerKeyId
	switch {
	case errors.Is(err, pgperrors.ErrKeyRevoked) && bySubkey && !signer.Revoked(now):
		return nil, &Error{CheckRevoked, fmt.Sprintf("the signing subkey %016X of key %s is revoked. Sign with a valid signing subkey.", *s.IssuerKeyId, fpr)}
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return nil, &Error{CheckRevoked, fmt.Sprintf("key %s is revoked. Sign with a valid admin key.", fpr)}
	case errors.Is(err, pgperrors.ErrKeyExpired) && bySubkey:
		return nil, &Error{CheckExpired, fmt.Sprintf("the signing subkey %016X of key %s has expired. Extend it (gpg --quick-set-expire)\nand update admin_keyring, or sign with a valid key.", *s.IssuerKeyId, fpr)}
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return nil, &Error{CheckExpired, fmt.Sprintf("key %s has expired. Extend it (gpg --quick-set-expire) and\nupdate admin_keyring, or sign with a valid admin key.", fpr)}
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return nil, &Error{CheckExpired, fmt.Sprintf("the signature by key %s has expired (or a binding signature of the key has). Sign the reply again.", fpr)}
	case err != nil:
		return nil, &Error{CheckBad, fmt.Sprintf("signature by key %s refused: %v", fpr, err)}
	}
	r := &Result{
		Fingerprint: fpr,
		SigningKey:  fmt.Sprintf("%016X", *s.IssuerKeyId),
		Created:     vs.CreationTime,
		Hash:        vs.Hash,
		ID:          identity(fpr, vs, signed),
	}
	if id := signer.PrimaryIdentity(); id != nil {
		r.UID = id.Name
	}
	return r, nil
}

// maxSignature bounds a signature block: a real one is a few hundred bytes
// (RSA-4096: about 600).
const maxSignature = 16 << 10

// onePacket reads the signature block's only packet; a block holding
// anything else (go-crypto's reader would skip a marker packet silently)
// is malformed.
func onePacket(body []byte) (*packet.Signature, error) {
	if len(body) > maxSignature {
		return nil, &Error{CheckMalformed, fmt.Sprintf("the signature block is larger than %d bytes", maxSignature)}
	}
	tags, err := packetTags(body)
	if err != nil {
		return nil, &Error{CheckMalformed, fmt.Sprintf("the signature block cannot be read: %v", err)}
	}
	if len(tags) != 1 || tags[0] != tagSignature {
		return nil, &Error{CheckMalformed, fmt.Sprintf("the signature block holds packets of types %v:\nit must hold exactly one signature packet (type %d). Send the signature as the signer made it.", tags, tagSignature)}
	}
	p, err := packet.NewReader(bytes.NewReader(body)).Next()
	if err != nil {
		return nil, &Error{CheckMalformed, fmt.Sprintf("no signature packet: %v", err)}
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return nil, &Error{CheckMalformed, fmt.Sprintf("a %T where a signature packet belongs", p)}
	}
	return s, nil
}

const tagSignature = 2

// packetTags walks the packet headers of b (RFC 9580 section 4.2, old and
// new format) and returns each packet's tag. Partial and indeterminate
// lengths, which a signature never needs, are refused.
func packetTags(b []byte) ([]int, error) {
	var tags []int
	for len(b) > 0 {
		h := b[0]
		if h&0x80 == 0 {
			return nil, fmt.Errorf("byte %#02x is no packet header", h)
		}
		var tag, hdr, n int
		if h&0x40 != 0 {
			tag = int(h & 0x3f)
			if len(b) < 2 {
				return nil, errors.New("truncated packet header")
			}
			switch l := int(b[1]); {
			case l < 192:
				hdr, n = 2, l
			case l < 224:
				if len(b) < 3 {
					return nil, errors.New("truncated packet header")
				}
				hdr, n = 3, (l-192)<<8+int(b[2])+192
			case l == 255:
				if len(b) < 6 {
					return nil, errors.New("truncated packet header")
				}
				hdr, n = 6, int(b[2])<<24|int(b[3])<<16|int(b[4])<<8|int(b[5])
			default:
				return nil, errors.New("a partial body length")
			}
		} else {
			tag = int(h>>2) & 0xf
			lenBytes := [4]int{1, 2, 4, 0}[h&3]
			if lenBytes == 0 {
				return nil, errors.New("an indeterminate length")
			}
			if len(b) < 1+lenBytes {
				return nil, errors.New("truncated packet header")
			}
			hdr = 1 + lenBytes
			for _, c := range b[1:hdr] {
				n = n<<8 | int(c)
			}
		}
		if n < 0 || n > len(b)-hdr {
			return nil, fmt.Errorf("a packet of type %d longer than the block", tag)
		}
		tags = append(tags, tag)
		b = b[hdr+n:]
	}
	return tags, nil
}

// identity is Result.ID: SHA-256 over the signer's fingerprint, the hashed
// part of the signature and the signed text in the form the signature
// covers (line ends canonical, trailing blanks dropped: no two texts that
// differ only there can both verify under one signature).
func identity(fpr string, s *packet.Signature, signed []byte) string {
	text := sha256.New()
	for i, l := range bytes.Split(signed, []byte("\n")) {
		if i > 0 {
			text.Write([]byte("\r\n"))
		}
		text.Write(bytes.TrimRight(l, " \t\r"))
	}
	h := sha256.New()
	fmt.Fprintf(h, "buildd-mail signature v1\x00%s\x00%d\x00", fpr, len(s.HashSuffix))
	h.Write(s.HashSuffix)
	h.Write(text.Sum(nil))
	return hex.EncodeToString(h.Sum(nil))
}

func primaryFpr(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// usage names a key's usage flags, as gpg lists them.
func usage(self *packet.Signature) string {
	if self == nil || !self.FlagsValid {
		return "none given"
	}
	var u []string
	for _, f := range []struct {
		on   bool
		name string
	}{{self.FlagCertify, "certify"}, {self.FlagSign, "sign"}, {self.FlagEncryptCommunications || self.FlagEncryptStorage, "encrypt"}, {self.FlagAuthenticate, "authenticate"}} {
		if f.on {
			u = append(u, f.name)
		}
	}
	if len(u) == 0 {
		return "none"
	}
	return strings.Join(u, ", ")
}

// Replay is a signature used before by another mail.
func Replay(r *Result, firstMail string) *Error {
	when := strings.SplitN(firstMail, ".", 2)[0]
	var t time.Time
	if ns, err := strconv.ParseInt(when, 10, 64); err == nil {
		t = time.Unix(0, ns)
	}
	return &Error{CheckReplay, fmt.Sprintf("this signature (made %s by %s) was already used by a mail\nreceived %s. Each signed answer acts once; sign a new one.",
		r.Created.UTC().Format(time.RFC3339), r.Fingerprint, t.UTC().Format(time.RFC3339))}
}
