package message

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"buildd/buildd-mail/mqueue"
)

// The bounds Parse reads a mail within. Anyone can send buildd-mail a mail,
// and the mails are processed one after another under the queue's lock, so
// one mail must cost time linear in its size and no more: Parse takes at
// most one pass over the header and MaxDepth passes over the body, and over
// any bound stops with an *Error naming it.
const (
	// MaxSize is the largest mail Parse reads, the size the queue stores.
	MaxSize = mqueue.MaxSize
	// MaxDepth bounds the nesting of multiparts: the top-level multipart is
	// at depth 1 (real mailers nest at most 4 or 5 deep).
	MaxDepth = 16
	// MaxParts bounds the body parts of one mail, at all depths together.
	MaxParts = 256
	// MaxHeaderSize bounds a header block (the mail's, and every part's),
	// the blank line that ends it included.
	MaxHeaderSize = 1 << 20
	// MaxHeaderFields bounds the fields of a header block.
	MaxHeaderFields = 1000
)

var errTooManyParts = fmt.Errorf("more than %d parts", MaxParts)

// headerEnd returns the length of the header block that starts b: up to
// and including the blank line that ends it, else all of b. Lines may end
// in LF or CRLF, as textproto.ReadHeader reads them.
func headerEnd(b []byte) (int, error) {
	window := b[:min(len(b), MaxHeaderSize)]
	fields := 0
	for pos := 0; pos < len(window); {
		line := window[pos:]
		next := len(window)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, next = line[:i], pos+i+1
		} else if len(b) > MaxHeaderSize {
			break
		}
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return next, nil
		}
		if line[0] != ' ' && line[0] != '\t' {
			if fields++; fields > MaxHeaderFields {
				return 0, fmt.Errorf("more than %d fields in the header", MaxHeaderFields)
			}
		}
		pos = next
	}
	if len(b) > MaxHeaderSize {
		return 0, fmt.Errorf("header larger than %d bytes (no blank line ends it)", MaxHeaderSize)
	}
	return len(b), nil
}

// walker looks for the first text/plain part of an unsigned multipart mail,
// going through the whole tree within MaxDepth and MaxParts.
type walker struct {
	m     *Mail
	parts int
	found bool
}

// multipart reads the multipart body at path ("" for the mail's body, else
// "1.2"-style part numbers), depth levels down.
func (w *walker) multipart(body []byte, mt, boundary, path string, depth int) error {
	if depth > MaxDepth {
		return &Error{"multipart body", fmt.Errorf("nesting deeper than %d (part %s is %s)", MaxDepth, path, mt)}
	}
	parts, err := splitMultipart(body, boundary, MaxParts-w.parts)
	if errors.Is(err, errTooManyParts) {
		return &Error{"multipart body", err}
	}
	if err != nil {
		if path != "" {
			err = fmt.Errorf("part %s (%s): %w", path, mt, err)
		}
		return &Error{"multipart body", err}
	}
	w.parts += len(parts)
	for i, p := range parts {
		pp := strconv.Itoa(i + 1)
		if path != "" {
			pp = path + "." + pp
		}
		h, pb, err := readPart(p)
		if err != nil {
			return &Error{"part " + pp + " header", err}
		}
		t, params, _ := contentType(h)
		switch {
		case strings.HasPrefix(t, "multipart/"):
			if err := w.multipart(pb, t, params["boundary"], pp, depth+1); err != nil {
				return err
			}
		case t == "text/plain" && !w.found:
			w.found = true
			if err := w.m.setText("part "+pp+" body", h, pb, t, params); err != nil {
				return err
			}
		}
	}
	return nil
}
