package web

import (
	"html/template"
	"io"
	"sync"
)

// pages are the HTML templates, one per page, sharing "head" and "foot":
// this file's, and those another file adds (log.go), parsed together on
// the first page served. Parsing them takes about 0.4 ms, which every
// wanna-build process paid at start-up, --info and --take too, when they
// were parsed in the package's initialisation. html/template escapes
// every value for its context.
var pages = lazyTemplates{texts: []string{pagesText}}

// lazyTemplates is a set of templates parsed on first use.
type lazyTemplates struct {
	texts []string // added only during the package's initialisation
}

// add adds text to the templates; for a package-level var of another
// file: var _ = pages.add(`...`).
func (l *lazyTemplates) add(text string) bool {
	l.texts = append(l.texts, text)
	return true
}

// parsedPages parses pages once; an error in them is a bug that any test
// serving a page finds.
var parsedPages = sync.OnceValue(func() *template.Template {
	t := template.New("").Funcs(template.FuncMap{"inc": func(n int) int { return n + 1 }})
	for _, text := range pages.texts {
		template.Must(t.Parse(text))
	}
	return t
})

// ExecuteTemplate is template.ExecuteTemplate of the parsed set.
func (l *lazyTemplates) ExecuteTemplate(w io.Writer, name string, data any) error {
	return parsedPages().ExecuteTemplate(w, name, data)
}

// pagesText are the pages but the logs' (log.go).
const pagesText = `
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} – wanna-build</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; }
pre { white-space: pre-wrap; word-break: break-all; max-width: 60em; margin: 0; font-size: 0.9em; }
nav { margin-bottom: 1em; }
.Needs-Build { background: #fff7d6; } .Building { background: #dcecff; }
.Failed, .BD-Uninstallable { background: #ffe0e0; } .Dep-Wait { background: #f3e6ff; }
.Installed, .Uploaded, .Built { background: #e3f7e3; }
</style></head><body>
<nav><a href="/">wanna-build</a></nav>
<h1>{{.}}</h1>
{{end}}

{{define "foot"}}</body></html>
{{end}}

{{define "overview"}}{{template "head" "Queues"}}
{{if .Pairs}}<table>
<tr><th>distribution</th><th>architecture</th>{{range .States}}<th>{{.}}</th>{{end}}<th>total</th><th>Needs-Build, last {{len (index .Pairs 0).Depth}} days</th></tr>
{{range $p := .Pairs}}<tr><td>{{$p.Dist}}</td><td><a href="/dist/{{$p.Dist}}/{{$p.Arch}}">{{$p.Arch}}</a></td>
{{- range $st := $.States}}<td class="n">{{with index $p.Counts $st}}<a href="/dist/{{$p.Dist}}/{{$p.Arch}}?state={{$st}}">{{.}}</a>{{end}}</td>{{end}}
<td class="n">{{$p.Total}}</td><td>{{template "graph" $p.Graph}}</td></tr>
{{end}}</table>{{else}}<p>The queue is empty.</p>{{end}}
<h2>Builders</h2>
{{if .Builders}}<table><tr><th>builder</th><th>building</th><th>last heard from (UTC)</th><th>slots</th><th>state</th></tr>
{{range .Builders}}<tr><td><a href="/builder/{{.Builder}}">{{.Builder}}</a></td><td class="n">{{.Building}}</td><td>{{.LastHeard}}</td><td class="n">{{if .ReportsIn}}{{.Slots}}{{end}}</td><td>{{.State}}</td></tr>
{{end}}</table>{{else}}<p>No builder is building or reports in.</p>{{end}}
<p>Also: <a href="/builders">every builder's heartbeats</a>, <a href="/api/">JSON</a>, <a href="/metrics">metrics</a>.</p>
{{template "foot"}}{{end}}

{{define "package"}}{{template "head" .Package}}
<table>
<tr><th>distribution</th><th>arch</th><th>version</th><th>state</th><th>builder</th><th>since (UTC)</th><th>priority</th><th>calprio</th><th>why isn't it building?</th><th>details</th></tr>
{{range .Cells}}<tr class="{{.State}}"><td>{{.Dist}}</td><td><a href="/dist/{{.Dist}}/{{.Arch}}">{{.Arch}}</a></td><td>{{.Version}}</td><td>{{.State}}</td>
<td>{{template "builderlink" .}}</td><td>{{.Since}}</td>
<td>{{.Priority}}{{with .Notes}}:{{.}}{{end}}{{with .BuildPri}} bp {{.}}{{end}}{{with .PermBuildPri}} perm {{.}}{{end}}</td><td class="n">{{.CalPrio}}</td>
<td>{{.Why}}</td>
<td>{{with .Failed}}<pre>{{.}}</pre>{{end}}{{with .Depends}}<pre>{{.}}</pre>{{end}}{{with .BDProblem}}<pre>{{.}}</pre>{{end}}{{template "celllogs" .}}</td></tr>
{{end}}</table>
<h2>Builds</h2>
{{if .HasBuilds}}<table><tr><th>distribution</th><th>arch</th><th>ended (UTC)</th><th>version</th><th>builder</th><th>outcome</th><th>class</th><th>stage</th><th>peak memory</th><th>CPU time</th><th>disk</th><th>wall time</th><th>then</th></tr>
{{range .Cells}}{{range .Builds}}<tr><td>{{.Dist}}</td><td>{{.Arch}}</td><td>{{.Time}}</td><td>{{.Version}}</td><td>{{template "builderlink" .}}</td><td>{{.Outcome}}</td><td>{{.Class}}</td><td>{{.Stage}}</td>
<td class="n">{{.PeakMemoryText}}</td><td class="n">{{.CPUTimeText}}</td><td class="n">{{.DiskText}}</td><td class="n">{{.WallText}}</td><td>{{with .Held}}held for the admin: {{.}}{{else}}{{with .RetryAfter}}not taken again before {{.}}{{end}}{{end}}</td></tr>
{{end}}{{end}}</table>{{else}}<p>No ended build kept.</p>{{end}}
<h2>History</h2>
{{with .HistoryOmitted}}<p>{{.}} older entries not shown.</p>{{end}}
{{if .History}}<table><tr><th>time (UTC)</th><th>distribution</th><th>arch</th><th>action</th><th>version</th><th>from</th><th>to</th><th>by</th></tr>
{{range .History}}<tr><td>{{.Time}}</td><td>{{.Dist}}</td><td>{{.Arch}}</td><td>{{.Action}}</td><td>{{.Version}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.RealUser}} as {{.User}}</td></tr>
{{end}}</table>{{else}}<p>No history.</p>{{end}}
{{template "foot"}}{{end}}

{{define "dist"}}{{template "head" (printf "%s/%s" .Dist .Arch)}}
{{with .Required}}<p>Requires build machine revision {{.}}{{with $.Behind}}; behind, taking nothing from it until their machine is on it: {{range $i, $b := .}}{{if $i}}, {{end}}<a href="/builder/{{$b}}">{{$b}}</a>{{end}}{{end}}.</p>
{{end}}<p>{{range .States}}<a href="?state={{.}}&amp;sort={{$.Sort}}">{{.}}</a>: {{index $.Counts .}}; {{end}}<a href="?sort={{.Sort}}">all</a>: {{.Total}}.</p>
<p>{{with .State}}In {{.}}: {{end}}{{.Matching}} package(s), sorted by {{.Sort}}{{if .Rows}}; {{.First}}–{{.Last}} shown{{end}}. Sort by:
{{range $k := .SortOrders}}<a href="?{{with $.State}}state={{.}}&amp;{{end}}sort={{$k}}">{{$k}}</a> {{end}}</p>
{{template "pagelinks" .}}<table>
<tr><th>package</th><th>version</th><th>state</th><th>builder</th><th>since (UTC)</th><th>section</th><th>priority</th><th>calprio</th><th>days</th><th>expected duration</th><th>why isn't it building?</th></tr>
{{range .Rows}}<tr class="{{.State}}"><td><a href="/package/{{.Package}}">{{.Package}}</a></td><td>{{.Version}}</td><td>{{.State}}</td><td>{{template "builderlink" .}}</td>
<td>{{.Since}}</td><td>{{.Section}}</td><td>{{.Priority}}{{with .Notes}}:{{.}}{{end}}</td><td class="n">{{.CalPrio}}</td><td class="n">{{.Days}}</td><td>{{.DurationText}}</td><td>{{.Why}}</td></tr>
{{end}}</table>
{{template "pagelinks" .}}{{template "foot"}}{{end}}

{{define "pagelinks"}}{{if gt .Pages 1}}<p>Page {{.Page}} of {{.Pages}}:{{$last := 0}}
{{- range $n := .PageLinks}}{{if gt $n (inc $last)}} …{{end}}{{$last = $n}} {{if eq $n $.Page}}<b>{{$n}}</b>{{else}}<a href="?{{with $.State}}state={{.}}&amp;{{end}}sort={{$.Sort}}&amp;page={{$n}}">{{$n}}</a>{{end}}{{end}}</p>
{{end}}{{end}}

{{define "builderlink"}}{{if .ByAdmin}}marked by the admin {{.Builder}}{{else}}{{with .Builder}}<a href="/builder/{{.}}">{{.}}</a>{{end}}{{end}}{{end}}

{{define "heartbeats"}}<table><tr><th>builder</th><th>distribution</th><th>arch</th><th>slots</th><th>slot memory</th><th>running</th><th>last heard from (UTC)</th><th>state</th></tr>
{{range .}}<tr><td><a href="/builder/{{.Builder}}">{{.Builder}}</a></td><td>{{.Dist}}</td><td><a href="/dist/{{.Dist}}/{{.Arch}}">{{.Arch}}</a></td><td class="n">{{.Slots}}</td><td class="n">{{.SlotMemoryText}}</td><td class="n">{{.Running}}</td>
<td>{{.LastHeard}} ({{.LastHeardAgo}} ago)</td><td>{{.State}}{{with .Quarantined}}<pre>{{.}}</pre>{{end}}</td></tr>
{{end}}</table>{{end}}

{{define "builders"}}{{template "head" "Builders"}}
{{if .Builders}}<p>{{len .Builders}} heartbeat(s): {{.Silent}} silent (unheard for more than {{.SilentAfter}}), {{.Quarantined}} quarantined.</p>
{{template "heartbeats" .Builders}}{{else}}<p>No builder ever reported in.</p>{{end}}
{{template "foot"}}{{end}}

{{define "graph"}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}"><title>{{.Title}}</title><polyline fill="none" stroke="#36c" stroke-width="1.5" points="{{.Points}}"/></svg>{{end}}

{{define "builder"}}{{template "head" .Builder}}
<p>{{with .Since}}Building since {{.}} (UTC). {{end}}{{with .LastHeard}}Last heard from {{.}} (UTC), {{$.LastHeardAgo}} ago.{{else}}Never heard from.{{end}}</p>
{{if .Building}}<table><tr><th>distribution</th><th>arch</th><th>package</th><th>version</th><th>building since (UTC)</th><th>lease until (UTC)</th></tr>
{{range .Building}}<tr><td>{{.Dist}}</td><td><a href="/dist/{{.Dist}}/{{.Arch}}">{{.Arch}}</a></td><td><a href="/package/{{.Package}}">{{.Package}}</a></td><td>{{.Version}}</td><td>{{.Since}}</td><td>{{.Lease}}{{if .LeaseEnded}} (ended){{end}}</td></tr>
{{end}}</table>{{else}}<p>Building nothing.</p>{{end}}
<h2>Heartbeats</h2>
{{if .Queues}}{{template "heartbeats" .Queues}}{{else}}<p>Never reported in.</p>{{end}}
<h2>Build machines</h2>
{{range $m := .Machines}}{{if $m.Behind}}<p><strong>Takes nothing from {{$m.Dist}}/{{$m.Arch}} until it has revision {{$m.Required}}</strong>: its machine is on {{with $m.Current}}revision {{.}} ({{$m.CurrentUUID}}){{else}}no revision it reported current{{end}}.</p>
{{end}}{{end}}{{if .Machines}}<table><tr><th>distribution</th><th>arch</th><th>machine</th><th>revision</th><th>UUID</th><th>current</th><th>required by the queue</th><th>reported (UTC)</th></tr>
{{range $m := .Machines}}{{range .Revisions}}<tr><td>{{$m.Dist}}</td><td><a href="/dist/{{$m.Dist}}/{{$m.Arch}}">{{$m.Arch}}</a></td><td>{{.Machine}}</td><td>{{.Revision}}</td><td>{{.UUID}}</td><td>{{if .Current}}yes{{end}}</td><td>{{if eq .UUID $m.Required}}yes{{end}}</td><td>{{.Reported}} ({{.ReportedAgo}} ago)</td></tr>
{{end}}{{end}}</table>{{else}}<p>No revisions of its build machines reported.</p>{{end}}
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" (printf "%d %s" .Code .Status)}}
<p>{{.Error}}</p>
{{template "foot"}}{{end}}
`
