package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"buildd/internal/debversion"
	"buildd/internal/queue"
)

// The build logs, from the queue's log store:
//
//	/log/DIST/ARCH/PKG_VERSION            the newest log of that version
//	/log/DIST/ARCH/PKG_VERSION/UNIXTIME   the build that ended then
//	.../raw                               either one as text/plain
//	/api/log/DIST/ARCH/PKG_VERSION[/UNIXTIME]
//
// A page shows the log's summary block, then its first and last
// maxLogShown bytes (all of it when it is not longer), escaped and with
// control bytes and invisible format characters made visible, then every
// attempt of the package in that queue. Raw is the stored gzip stream
// itself to a client that accepts gzip, else decompressed on the way.
//
// A request makes its answer while it holds one of logSlots: the log is
// copied out of the store into an unlinked temporary file, so the store
// is closed (a bbolt queue's lock released) at once, and a page is made
// from it. The slot is let go before the answer is written, so a client
// that reads slowly or not at all keeps no other from the logs. The
// answers being written hold at most maxLogHeld bytes (pages in memory,
// raw logs in their temporary files), and a client must take each
// sendChunk of its answer within logStall or is dropped. A request that
// gets no slot within logWait, or no room, is a 503 with Retry-After.

// maxLogShown is how much of a log's start, and of its end, a page
// shows.
const maxLogShown = 1 << 20

// maxSummary is the most summary lines a page shows.
const maxSummary = 64

// maxCellLogs is the most logs a package page lists per queue.
const maxCellLogs = 10

// logSlots bounds the requests reading a log out of the store, and making
// its page, at once.
var logSlots = make(chan struct{}, 4)

// logWait is how long a log request waits for a slot.
const logWait = 2 * time.Second

// maxLogHeld bounds the bytes that the log answers being written hold:
// room for two of the largest raw logs, or a hundred pages of big logs
// (2 MiB each).
const maxLogHeld = max(256<<20, 2*queue.MaxLogGzip)

// logHeld is what the log answers being written hold.
var logHeld = &budget{max: maxLogHeld}

// logStall is how long a log answer's client may take to accept each
// sendChunk of it (a var for the tests).
var logStall = 10 * time.Second

// sendChunk is how much of a log answer is written under one deadline.
const sendChunk = 64 << 10

// answerCost is what a log answer being written holds besides its bytes
// (buffers, a decompressor, a file descriptor), so that logHeld also
// bounds how many there are.
const answerCost = 128 << 10

// logPage is a log's page and its JSON.
type logPage struct {
	Dist     string         `json:"dist"`
	Arch     string         `json:"arch"`
	Package  string         `json:"package"`
	Version  string         `json:"version"`
	End      string         `json:"time"` // queue.TimeFormat UTC
	EndUnix  int64          `json:"time_unix"`
	Builder  string         `json:"builder"`
	Status   string         `json:"status"`
	Size     int64          `json:"size"`
	Stored   int64          `json:"stored"`
	URL      string         `json:"url"`
	RawURL   string         `json:"raw_url"`
	Summary  []summaryField `json:"summary"`
	Attempts []logRef       `json:"attempts"`

	Head    string `json:"-"`
	Tail    string `json:"-"`
	Omitted int64  `json:"-"` // bytes between Head and Tail not shown
}

// summaryField is one line of the log's summary block.
type summaryField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// logRef is one stored log, as an attempt list or a package cell names
// it.
type logRef struct {
	Version string `json:"version"`
	End     string `json:"time"`
	EndUnix int64  `json:"time_unix"`
	Builder string `json:"builder"`
	Status  string `json:"status"`
	Size    int64  `json:"size"`
	URL     string `json:"url"`
	RawURL  string `json:"raw_url"`
	Current bool   `json:"-"`
}

var _ = pages.add(`
{{define "log"}}{{template "head" (printf "%s_%s on %s/%s" .Package .Version .Dist .Arch)}}
<p>Build of <a href="/package/{{.Package}}">{{.Package}}</a> {{.Version}} on {{.Dist}}/<a href="/dist/{{.Dist}}/{{.Arch}}">{{.Arch}}</a>
by <a href="/builder/{{.Builder}}">{{.Builder}}</a>, ended {{.End}} (UTC): <b>{{.Status}}</b>.</p>
{{if .Summary}}<table>{{range .Summary}}<tr><th>{{.Key}}</th><td><pre>{{.Value}}</pre></td></tr>
{{end}}</table>{{else}}<p>The log has no summary block.</p>{{end}}
<p><a href="{{.RawURL}}">The whole log as text</a> ({{.Size}} bytes; {{.Stored}} compressed).</p>
<h2>Log</h2>
{{if .Omitted}}<p>The log's first and last lines are shown; {{.Omitted}} bytes in between are not (<a href="{{.RawURL}}">the whole log</a>).</p>{{end}}
<pre>{{.Head}}</pre>
{{if .Omitted}}<p>[… {{.Omitted}} bytes not shown …]</p>
<pre>{{.Tail}}</pre>{{end}}
<h2>Every log of {{.Package}} on {{.Dist}}/{{.Arch}}</h2>
<table><tr><th>version</th><th>ended (UTC)</th><th>builder</th><th>status</th><th>bytes</th><th></th></tr>
{{range .Attempts}}<tr><td>{{.Version}}</td><td>{{if .Current}}<b>{{.End}}</b>{{else}}<a href="{{.URL}}">{{.End}}</a>{{end}}</td><td>{{.Builder}}</td><td>{{.Status}}</td><td class="n">{{.Size}}</td><td><a href="{{.RawURL}}">raw</a></td></tr>
{{end}}</table>
{{template "foot"}}{{end}}

{{define "celllogs"}}{{with .Logs}}<p>Logs: {{range $i, $l := .}}{{if $i}}, {{end}}<a href="{{$l.URL}}">{{$l.Version}} {{$l.Status}} {{$l.End}}</a>{{end}}{{with $.LogsOmitted}}, and <a href="{{(index $.Logs 0).URL}}">{{.}} older</a>{{end}}</p>{{end}}{{end}}
`)

// logURL is the page of l, with /UNIXTIME when attempt is set, and suffix
// ("" or "/raw").
func logURL(l *queue.BuildLog, attempt bool, suffix string) string {
	u := "/log/" + url.PathEscape(l.Dist) + "/" + url.PathEscape(l.Arch) + "/" + url.PathEscape(l.PkgVersion())
	if attempt {
		u += "/" + strconv.FormatInt(l.Time, 10)
	}
	return u + suffix
}

func refOf(l *queue.BuildLog) logRef {
	return logRef{Version: text(l.Version), End: l.EndTime().Format(queue.TimeFormat), EndUnix: l.Time,
		Builder: text(l.Builder), Status: text(string(l.Status)), Size: l.Size,
		URL: logURL(l, true, ""), RawURL: logURL(l, true, "/raw")}
}

// cellLogs are the logs of one queue, newest first, for a package cell:
// at most maxCellLogs, and how many more there are. The newest log of
// each version links to the version's page.
func cellLogs(logs []queue.BuildLog, pr queue.Pair) ([]logRef, int) {
	var refs []logRef
	seen := map[string]bool{}
	for i := range logs {
		l := &logs[i]
		if l.Dist != pr.Dist || l.Arch != pr.Arch {
			continue
		}
		r := refOf(l)
		if !seen[l.Version] {
			seen[l.Version], r.URL = true, logURL(l, false, "")
		}
		refs = append(refs, r)
	}
	if len(refs) > maxCellLogs {
		return refs[:maxCellLogs], len(refs) - maxCellLogs
	}
	return refs, 0
}

// logRoutes adds the log pages to mux.
func (s *Server) logRoutes(mux *http.ServeMux) {
	for _, p := range []string{"/log/{dist}/{arch}/{pkgv}", "/log/{dist}/{arch}/{pkgv}/{time}"} {
		mux.Handle(p, s.logHandler(false, false))
		mux.Handle("/api"+p, s.logHandler(true, false))
		mux.Handle(p+"/raw", s.logHandler(false, true))
	}
}

// logRequest is what a log URL names, checked.
type logRequest struct {
	dist, arch, name, version string
	time                      int64 // 0: the newest
}

func parseLogRequest(r *http.Request) (*logRequest, error) {
	q := &logRequest{dist: r.PathValue("dist"), arch: r.PathValue("arch")}
	if err := checkLabel("distribution", q.dist); err != nil {
		return nil, err
	}
	if err := checkLabel("architecture", q.arch); err != nil {
		return nil, err
	}
	pkgv := r.PathValue("pkgv")
	name, version, ok := strings.Cut(pkgv, "_")
	if !ok {
		return nil, badRequest("invalid PKG_VERSION %s", quote(pkgv))
	}
	if err := checkPackage(name); err != nil {
		return nil, err
	}
	if debversion.CheckVersion(version) != nil {
		return nil, badRequest("invalid version %s", quote(version))
	}
	q.name, q.version = name, version
	if t := r.PathValue("time"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n <= 0 || t[0] == '+' {
			return nil, badRequest("invalid time %s: want unix seconds", quote(t))
		}
		q.time = n
	}
	return q, nil
}

// String names the log: "PKG_VERSION on DIST/ARCH".
func (q *logRequest) String() string {
	return q.name + "_" + q.version + " on " + q.dist + "/" + q.arch
}

// find picks the log the request names among logs, and lists the logs of
// its queue.
func (q *logRequest) find(logs []queue.BuildLog) (*queue.BuildLog, []queue.BuildLog, error) {
	var mine []queue.BuildLog
	var found *queue.BuildLog
	for i := range logs {
		l := &logs[i]
		if l.Dist != q.dist || l.Arch != q.arch {
			continue
		}
		mine = append(mine, *l)
		if found == nil && l.Version == q.version && (q.time == 0 || l.Time == q.time) {
			found = l
		}
	}
	if found == nil {
		what := "no log of " + q.name + "_" + q.version
		if q.time != 0 {
			what += fmt.Sprintf(" that ended at %d", q.time)
		}
		return nil, nil, notFound("%s on %s/%s", what, q.dist, q.arch)
	}
	return found, mine, nil
}

// logHandler serves a log's page (api: its JSON; raw: the log itself).
func (s *Server) logHandler(api, raw bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		q, err := parseLogRequest(r)
		if err != nil {
			s.fail(w, api, err)
			return
		}
		wait := time.NewTimer(logWait)
		defer wait.Stop()
		select {
		case logSlots <- struct{}{}:
		case <-r.Context().Done():
			return
		case <-wait.C:
			s.fail(w, api, busy("log %s: the %d log readers are busy; try again later", q, cap(logSlots)))
			return
		}
		a, err := func() (*logAnswer, error) {
			defer func() { <-logSlots }()
			return s.makeLogAnswer(q, api, raw)
		}()
		if err != nil {
			s.fail(w, api, err)
			return
		}
		defer a.close()
		if raw {
			s.serveRaw(w, r, a, start)
			return
		}
		header(w, api)
		w.Header().Set("Content-Length", strconv.Itoa(len(a.page)))
		if r.Method != http.MethodHead {
			send(w, bytes.NewReader(a.page), start)
		}
	})
}

// logAnswer is the answer to a log request, made while the request holds
// a slot and written after it: a page or its JSON, or a raw log's gzip
// stream in its temporary file. It holds size bytes, and answerCost, of
// logHeld.
type logAnswer struct {
	l    *queue.BuildLog
	page []byte
	gz   *os.File
	size int64
}

// close lets go of what a holds.
func (a *logAnswer) close() {
	if a.gz != nil {
		a.gz.Close()
	}
	logHeld.give(a.size + answerCost)
}

// makeLogAnswer copies the log q names out of the store and makes the
// answer (raw: keeps the copy), when logHeld has room for it.
func (s *Server) makeLogAnswer(q *logRequest, api, raw bool) (a *logAnswer, err error) {
	tmp, err := os.CreateTemp("", "wanna-build-web-log-")
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", q, err)
	}
	os.Remove(tmp.Name())
	defer func() {
		if a == nil || a.gz != tmp {
			tmp.Close()
		}
	}()
	var l *queue.BuildLog
	var attempts []queue.BuildLog
	err = s.withStore(func(db queue.Store) error {
		logs, err := db.Logs(q.name)
		if err != nil {
			return err
		}
		if l, attempts, err = q.find(logs); err != nil {
			return err
		}
		if err := db.CopyLog(l, tmp); errors.Is(err, queue.ErrNoLog) {
			return notFound("%v", err)
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", q, err)
	}
	if raw {
		a = &logAnswer{l: l, gz: tmp, size: size}
	} else {
		p, err := readLog(l, attempts, tmp)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if api {
			err = writeJSON(&b, p)
		} else {
			err = pages.ExecuteTemplate(&b, "log", p)
		}
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", q, err)
		}
		page := bytes.Clone(b.Bytes()) // not the buffer's spare room
		a = &logAnswer{l: l, page: page, size: int64(cap(page))}
	}
	if !logHeld.take(a.size + answerCost) {
		return nil, busy("log %s: no room for its %d bytes among the answers being written (%d at most); try again later", q, a.size, logHeld.max)
	}
	return a, nil
}

// send writes src to w sendChunk at a time, each of which the client must
// take within logStall, and all within writeTimeout of start. When the
// client does not, or src fails, it ends the connection without the
// answer's end, so the client cannot take a part for the whole.
func send(w http.ResponseWriter, src io.Reader, start time.Time) {
	rc := http.NewResponseController(w)
	end := start.Add(writeTimeout)
	for {
		deadline := time.Now().Add(logStall)
		if deadline.After(end) {
			deadline = end
		}
		// A ResponseWriter without deadlines (a test's recorder) does not
		// block.
		if err := rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			panic(http.ErrAbortHandler)
		}
		switch _, err := io.CopyN(w, src, sendChunk); {
		case err == io.EOF:
			return
		case err != nil:
			panic(http.ErrAbortHandler)
		}
	}
}

// serveRaw writes the log as text/plain: the gzip stream as it is when
// the client accepts gzip, else decompressed (not for HEAD).
func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request, a *logAnswer, start time.Time) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.FormatInt(a.size, 10))
		if r.Method != http.MethodHead {
			send(w, a.gz, start)
		}
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	zr, err := gzip.NewReader(a.gz)
	if err != nil {
		s.fail(w, false, fmt.Errorf("log %s: %w", a.l.PkgVersion(), err))
		return
	}
	send(w, io.LimitReader(zr, queue.MaxLogText), start)
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip
// (gzip, x-gzip or *, with a q above 0).
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip", "*":
			default:
				continue
			}
			q, ok := strings.CutPrefix(strings.ReplaceAll(strings.TrimSpace(params), " ", ""), "q=")
			if !ok {
				return true
			}
			f, err := strconv.ParseFloat(q, 64)
			return err == nil && f > 0
		}
	}
	return false
}

// readLog makes the page of l from its gzip stream: its start and end,
// its summary block and the attempts of its queue.
func readLog(l *queue.BuildLog, attempts []queue.BuildLog, gz io.Reader) (*logPage, error) {
	zr, err := gzip.NewReader(gz)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", l.PkgVersion(), err)
	}
	ht := &headTail{n: maxLogShown}
	if _, err := io.Copy(ht, io.LimitReader(zr, queue.MaxLogText)); err != nil {
		return nil, fmt.Errorf("log %s: %w", l.PkgVersion(), err)
	}
	p := &logPage{
		Dist: l.Dist, Arch: l.Arch, Package: l.Package, Version: text(l.Version),
		End: l.EndTime().Format(queue.TimeFormat), EndUnix: l.Time,
		Builder: text(l.Builder), Status: text(string(l.Status)), Size: ht.total, Stored: l.Stored,
		URL: logURL(l, true, ""), RawURL: logURL(l, true, "/raw"),
		Attempts: []logRef{},
	}
	head, tail := ht.head, ht.tailBytes()
	if omitted := ht.total - int64(len(head)+len(tail)); omitted > 0 {
		if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
			head = head[:i+1]
		}
		if i := bytes.IndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
		p.Omitted = ht.total - int64(len(head)+len(tail))
		p.Tail = visible(string(tail))
		p.Summary = parseSummary(string(tail))
	} else {
		whole := string(head) + string(tail)
		p.Summary = parseSummary(whole)
		head = []byte(whole)
	}
	p.Head = visible(string(head))
	for i := range attempts {
		r := refOf(&attempts[i])
		r.Current = attempts[i] == *l
		p.Attempts = append(p.Attempts, r)
	}
	return p, nil
}

// parseSummary reads the last summary block of a log: the "Key: value"
// lines after the "| Summary ... |" box, up to a blank line (at most
// maxSummary keys); a line without a key continues the value before it.
func parseSummary(log string) []summaryField {
	i := strings.LastIndex("\n"+log, "\n| Summary ")
	if i < 0 {
		return nil
	}
	rest := log[i:]
	for k := 0; k < 3; k++ {
		_, rest, _ = strings.Cut(rest, "\n")
	}
	block, _, _ := strings.Cut(rest, "\n\n")
	var keys, values []string
	for _, line := range strings.SplitN(block, "\n", 4*maxSummary) {
		k, v, ok := strings.Cut(line, ": ")
		switch {
		case ok && isSummaryKey(k) && len(keys) < maxSummary:
			keys, values = append(keys, k), append(values, v)
		case len(keys) > 0 && len(values[len(values)-1]) < maxText:
			values[len(values)-1] += "\n" + line
		}
	}
	fields := []summaryField{}
	for j, k := range keys {
		fields = append(fields, summaryField{Key: k, Value: text(values[j])})
	}
	return fields
}

func isSummaryKey(k string) bool {
	if k == "" || len(k) > 40 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && (c == '-' || c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// headTail keeps the first n bytes written to it and the last n after
// those, and counts them all.
type headTail struct {
	n     int
	head  []byte
	ring  []byte
	pos   int   // where the ring is written next
	spill int64 // bytes written past the head
	total int64
}

func (h *headTail) Write(p []byte) (int, error) {
	n := len(p)
	h.total += int64(n)
	if len(h.head) < h.n {
		k := min(h.n-len(h.head), len(p))
		h.head = append(h.head, p[:k]...)
		p = p[k:]
	}
	if len(p) > 0 && h.ring == nil {
		h.ring = make([]byte, h.n)
	}
	h.spill += int64(len(p))
	for len(p) > 0 {
		k := copy(h.ring[h.pos:], p)
		h.pos = (h.pos + k) % h.n
		p = p[k:]
	}
	return n, nil
}

// tailBytes is the kept end, in order.
func (h *headTail) tailBytes() []byte {
	if h.spill <= int64(h.n) {
		return h.ring[:h.spill]
	}
	return append(append([]byte(nil), h.ring[h.pos:]...), h.ring[:h.pos]...)
}

// budget bounds the bytes that some things hold at once; it is taken
// without waiting.
type budget struct {
	mu        sync.Mutex
	max, used int64
}

// take reserves n bytes, or reports false when they would pass max.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// give returns n bytes taken.
func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}
