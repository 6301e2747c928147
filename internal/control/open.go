package control

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Open opens a control file for reading: plain, gzip (.gz) or xz (.xz,
// decompressed by `xz -dc -T0`, threaded). The format is recognised by its magic
// bytes, or by the name's suffix when the file is too short to have them.
// Read errors, including xz's failure on a truncated or corrupt file (noticed
// when xz exits), name the file. Close releases everything, stopping xz if the
// stream was not read to its end.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, len(xzMagic))
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, xzMagic) || strings.HasSuffix(path, ".xz"):
		f.Close()
		return openXZ(path)
	case bytes.HasPrefix(head, gzipMagic) || strings.HasSuffix(path, ".gz"):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		return &gzipFile{path: path, f: f, zr: zr}, nil
	default:
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return f, nil
	}
}

type gzipFile struct {
	path string
	f    *os.File
	zr   *gzip.Reader
}

func (g *gzipFile) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: gzip: %w", g.path, err)
	}
	return n, err
}

func (g *gzipFile) Close() error {
	g.zr.Close()
	return g.f.Close()
}

// xzFile is the output of `xz -dc -T0 PATH`.
type xzFile struct {
	path   string
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr bytes.Buffer
	done   bool
	err    error
}

func openXZ(path string) (io.ReadCloser, error) {
	x := &xzFile{path: path, cmd: exec.Command("xz", "-dc", "-T0", "--", path)}
	x.cmd.Stderr = &limitedBuffer{buf: &x.stderr, max: 4096}
	out, err := x.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: xz -dc: %w", path, err)
	}
	x.out = out
	if err := x.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: xz -dc: %w", path, err)
	}
	return x, nil
}

func (x *xzFile) Read(p []byte) (int, error) {
	if x.done {
		if x.err != nil {
			return 0, x.err
		}
		return 0, io.EOF
	}
	n, err := x.out.Read(p)
	if err == io.EOF {
		x.done = true
		if werr := x.cmd.Wait(); werr != nil {
			x.err = fmt.Errorf("%s: xz -dc: %v: %s", x.path, werr, strings.TrimSpace(x.stderr.String()))
			return n, x.err
		}
	} else if err != nil {
		err = fmt.Errorf("%s: xz -dc: %w", x.path, err)
	}
	return n, err
}

// Close stops xz if it is still running and waits for it.
func (x *xzFile) Close() error {
	if x.done {
		return nil
	}
	x.done = true
	x.err = fmt.Errorf("%s: closed", x.path)
	x.cmd.Process.Kill()
	x.cmd.Wait()
	return nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
