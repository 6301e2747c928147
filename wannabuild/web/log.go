package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

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
// control bytes made visible, then every attempt of the package in that
// queue. Raw is the stored gzip stream itself to a client that accepts
// gzip, else decompressed on the way. The log is copied out of the store
// into an unlinked temporary file, so the store is closed (a bbolt
// queue's lock released) before the answer is written; at most logSlots
// requests read logs at once.

// maxLogShown is how much of a log's start, and of its end, a page
// shows.
const maxLogShown = 1 << 20

// maxSummary is the most summary lines a page shows.
const maxSummary = 64

// maxCellLogs is the most logs a package page lists per queue.
const maxCellLogs = 10

// logSlots bounds the requests reading a log at once.
var logSlots = make(chan struct{}, 4)

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

var _ = template.Must(pages.Parse(`
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
`))

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
		Builder: text(l.Builder), Status: text(l.Status), Size: l.Size,
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
		q, err := parseLogRequest(r)
		if err != nil {
			s.fail(w, api, err)
			return
		}
		select {
		case logSlots <- struct{}{}:
			defer func() { <-logSlots }()
		case <-r.Context().Done():
			return
		}
		tmp, err := os.CreateTemp("", "wanna-build-web-log-")
		if err != nil {
			s.fail(w, api, err)
			return
		}
		os.Remove(tmp.Name())
		defer tmp.Close()
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
		if err == nil {
			_, err = tmp.Seek(0, io.SeekStart)
		}
		if err != nil {
			s.fail(w, api, err)
			return
		}
		if raw {
			s.serveRaw(w, r, l, tmp)
			return
		}
		p, err := readLog(l, attempts, tmp)
		if err != nil {
			s.fail(w, api, err)
			return
		}
		var b bytes.Buffer
		if api {
			err = writeJSON(&b, p)
		} else {
			err = pages.ExecuteTemplate(&b, "log", p)
		}
		if err != nil {
			s.fail(w, api, err)
			return
		}
		header(w, api)
		w.Write(b.Bytes())
	})
}

// serveRaw writes the log as text/plain: the gzip stream as it is when
// the client accepts gzip, else decompressed.
func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request, l *queue.BuildLog, gz *os.File) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header) {
		h.Set("Content-Encoding", "gzip")
		if st, err := gz.Stat(); err == nil {
			h.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		}
		io.Copy(w, gz)
		return
	}
	zr, err := gzip.NewReader(gz)
	if err != nil {
		s.fail(w, false, fmt.Errorf("log %s: %w", l.PkgVersion(), err))
		return
	}
	io.Copy(w, io.LimitReader(zr, queue.MaxLogText))
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
		Builder: text(l.Builder), Status: text(l.Status), Size: ht.total, Stored: l.Stored,
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
