package message

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
)

// The module may not pull in golang.org/x/text, so go-message's charset
// package is out of reach; these are the charsets admins' mailers send
// replies in. Every one maps bytes to runes without state.
func init() { message.CharsetReader = charsetReader }

// cp1252 holds windows-1252's 0x80-0x9f; the rest is ISO-8859-1.
var cp1252 = [32]rune{
	0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
	0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
}

// latin9 holds ISO-8859-15's differences from ISO-8859-1.
var latin9 = map[byte]rune{0xa4: 0x20ac, 0xa6: 0x0160, 0xa8: 0x0161, 0xb4: 0x017d, 0xb8: 0x017e, 0xbc: 0x0152, 0xbd: 0x0153, 0xbe: 0x0178}

func charsetReader(cs string, in io.Reader) (io.Reader, error) {
	var m func(b byte) rune
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "utf-8", "utf8", "us-ascii", "ascii", "":
		return in, nil
	case "iso-8859-1", "iso8859-1", "latin1", "l1", "iso_8859-1":
		m = func(b byte) rune { return rune(b) }
	case "iso-8859-15", "iso8859-15", "latin9", "latin-9":
		m = func(b byte) rune {
			if r, ok := latin9[b]; ok {
				return r
			}
			return rune(b)
		}
	case "windows-1252", "cp1252":
		m = func(b byte) rune {
			if b >= 0x80 && b < 0xa0 {
				return cp1252[b-0x80]
			}
			return rune(b)
		}
	default:
		return nil, fmt.Errorf("unsupported charset %q (use UTF-8)", cs)
	}
	b, err := io.ReadAll(in)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b))
	for _, c := range b {
		if c < utf8.RuneSelf {
			out.WriteByte(c)
		} else {
			out.WriteRune(m(c))
		}
	}
	return &out, nil
}

// Decode converts b from charset cs to UTF-8; unknown charsets are an error.
func Decode(b []byte, cs string) (string, error) {
	r, err := charsetReader(cs, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(r)
	return string(out), err
}
