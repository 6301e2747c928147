package web

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
)

// buildLog is a log as buildd/build writes it: the body, the summary
// block, and a .changes after it.
func buildLog(body string, summary ...string) string {
	box := "+" + strings.Repeat("-", 78) + "+"
	return body + "\n" + box + "\n| Summary                                      Wed, 18 Nov 2026 10:00:00 +0000 |\n" + box + "\n\n" +
		strings.Join(summary, "\n") + "\n\n" + box + "\n| Changes |\n" + box + "\n\nhello_2.10-3_amd64.changes:\n Fail-Stage: not this one\n"
}

// hostileLog is build output from outside: markup, quotes, control
// bytes, a NUL and bidi controls, in the body and in the summary.
var hostileLog = buildLog("<script>alert(\"x\")</script> 'q' \x1b[31mred\x00\x07\n</pre><b>bold</b> \u202egnp.exe\u202c\u2067",
	"Package: hello", "Status: attempted", "Fail-Stage: build", `Fail-Reason: <img src=x onerror="alert(1)"> \x1b`+"\u200f\u2066")

// bigLog is longer than a page shows: 5 MiB of lines before the summary.
var bigLog = buildLog(strings.Repeat("a long build line of the compiler\n", 5<<20/34)+"THE LAST LINE", "Package: gcc", "Status: successful", "Build-Time: 7200")

// logEnd is when the fixture's builds ended.
const logEnd = now - 3600

// logFixture is fixture's queue with build logs: two attempts of hello
// 2.10-3 on sid/amd64, a hostile log on sid/arm64 and a big one of gcc.
func logFixture(t *testing.T) (string, map[string]string) {
	t.Helper()
	spec := fixture(t)
	db := openQueue(t, spec)
	defer db.Close()
	texts := map[string]string{}
	expires := time.Now().Unix() + 365*86400
	for _, l := range []struct {
		arch, pkg, version, builder, status string
		end                                 int64
		text                                string
	}{
		{"amd64", "hello", "2.10-3", "buildd_amd64", "given-back", logEnd - 7200, buildLog("fetching failed", "Package: hello", "Status: given-back", "Fail-Stage: fetch-src", "Fail-Reason: 404")},
		{"amd64", "hello", "2.10-3", "buildd_amd64", "attempted", logEnd, buildLog("compile line\nerror: it broke", "Package: hello", "Status: attempted", "Fail-Stage: build",
			"Fail-Reason: dpkg-buildpackage failed", "  (exit status 2)", "Build-Time: 12", "Job-Time: 15")},
		{"arm64", "hello", "2.10-3", "buildd_arm64", "attempted", logEnd, hostileLog},
		{"amd64", "gcc", "13-1", "buildd_amd64", "successful", logEnd, bigLog},
	} {
		var gz bytes.Buffer
		if err := queue.CompressLog(&gz, strings.NewReader(l.text), int64(len(l.text))); err != nil {
			t.Fatal(err)
		}
		bl := &queue.BuildLog{Dist: "sid", Arch: l.arch, Package: l.pkg, Version: l.version, Time: l.end, Builder: l.builder,
			Status: queue.Outcome(l.status), Size: int64(len(l.text)), Expires: expires}
		if err := db.PutLog(bl, gz.Bytes()); err != nil {
			t.Fatal(err)
		}
		texts[fmt.Sprintf("/log/sid/%s/%s/%d", l.arch, bl.PkgVersion(), l.end)] = l.text
	}
	return spec, texts
}

// fetch is a GET with the headers given, through a client that does not
// decompress by itself.
func fetch(t *testing.T, ts *httptest.Server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestLogPages: the log pages, their JSON, the package page's links to
// them, hostile and big logs shown safely, and bad URLs refused.
func TestLogPages(t *testing.T) {
	spec, _ := logFixture(t)
	ts := newServer(t, spec)
	older := fmt.Sprintf("/log/sid/amd64/hello_2.10-3/%d", logEnd-7200)
	for _, tc := range []struct {
		path string
		code int
		want []string // in the body, in this order
		not  []string
	}{
		{"/log/sid/amd64/hello_2.10-3", 200, []string{"<h1>hello_2.10-3 on sid/amd64</h1>", "<b>attempted</b>",
			"<th>Status</th><td><pre>attempted</pre>", "<th>Fail-Stage</th><td><pre>build</pre>",
			"<th>Fail-Reason</th><td><pre>dpkg-buildpackage failed\n  (exit status 2)</pre>", "<th>Job-Time</th><td><pre>15</pre>",
			"<pre>compile line\nerror: it broke", "Every log of hello on sid/amd64",
			"<b>2026 Nov 18 10:06:40</b>", `href="` + older + `"`, "given-back"},
			[]string{"<pre>not this one"}},
		{older, 200, []string{"<b>given-back</b>", "<th>Fail-Stage</th><td><pre>fetch-src</pre>", "fetching failed", "<b>2026 Nov 18 08:06:40</b>"}, []string{"compile line"}},
		{"/log/sid/arm64/hello_2.10-3", 200, []string{
			`<th>Fail-Reason</th><td><pre>&lt;img src=x onerror=&#34;alert(1)&#34;&gt; \x1b\u200f\u2066</pre>`,
			`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#39;q&#39; \x1b[31mred\x00\x07`, `&lt;/pre&gt;&lt;b&gt;bold&lt;/b&gt; \u202egnp.exe\u202c\u2067`},
			[]string{"<script>", "<img", "<b>bold", "\x00", "\x1b", "\x07", "\u202e", "\u202c", "\u2067", "\u200f", "\u2066"}},
		{"/api/log/sid/amd64/hello_2.10-3", 200, []string{`"package": "hello"`, `"status": "attempted"`,
			`"summary": [`, `"key": "Fail-Stage"`, `"value": "build"`, `"attempts": [`, `"url": "` + older + `"`, `"raw_url": "` + older + `/raw"`},
			[]string{"compile line"}},
		{"/log/sid/amd64/gcc_13-1", 200, []string{"<th>Build-Time</th><td><pre>7200</pre>", "bytes in between are not", "<pre>a long build line", "bytes not shown", "THE LAST LINE"}, nil},
		{"/package/hello", 200, []string{"Logs: ", `href="/log/sid/amd64/hello_2.10-3"`, `href="` + older + `"`, `href="/log/sid/arm64/hello_2.10-3"`}, nil},
		{"/api/package/hello", 200, []string{`"logs": [`, `"url": "/log/sid/amd64/hello_2.10-3"`}, nil},
		{"/log/sid/amd64/hello_9-9", 404, []string{"no log of hello_9-9 on sid/amd64"}, nil},
		{"/log/sid/amd64/hello_2.10-3/123", 404, []string{"no log of hello_2.10-3 that ended at 123"}, nil},
		{"/log/bookworm/amd64/hello_2.10-3", 404, nil, nil},
		{"/api/log/sid/amd64/nosuch_1", 404, []string{`"code": 404`}, nil},
		{"/log/sid/amd64/..%2F..%2Fetc%2Fpasswd", 400, []string{"invalid PKG_VERSION"}, nil},
		{"/log/sid/amd64/hello_..%2F..%2Fwb.db", 400, []string{"invalid version"}, nil},
		{"/log/..%2Fsid/amd64/hello_2.10-3", 400, []string{"invalid distribution name"}, nil},
		{"/log/sid/AMD64/hello_2.10-3", 400, []string{"invalid architecture name"}, nil},
		{"/log/sid/amd64/Hello_2.10-3", 400, []string{"invalid package name"}, nil},
		{"/log/sid/amd64/hello", 400, []string{"invalid PKG_VERSION"}, nil},
		{"/log/sid/amd64/hello_2.10-3%00", 400, []string{"invalid version"}, nil},
		{"/log/sid/amd64/hello_2.10-3/-1", 400, []string{"invalid time"}, nil},
		{"/log/sid/amd64/hello_2.10-3/x/raw", 400, []string{"invalid time"}, nil},
		{"/log/sid/amd64/%3Cscript%3E_1/raw", 400, []string{"invalid package name &#34;&lt;script&gt;&#34;"}, []string{"<script>"}},
		{"/log/../../etc/passwd", 404, nil, nil},
		{"/log/sid/amd64/hello_2.10-3/raw/x", 404, nil, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, ts, "GET", tc.path)
			if resp.StatusCode != tc.code {
				t.Fatalf("code %d, want %d; body:\n%.2000s", resp.StatusCode, tc.code, body)
			}
			checkBody(t, body, tc.want, tc.not)
			if len(body) > 8*maxLogShown {
				t.Errorf("a page of %d bytes", len(body))
			}
		})
	}
}

// TestRawLog: a log's raw form is the stored gzip stream to a client that
// accepts gzip, and the text to one that does not; always text/plain.
func TestRawLog(t *testing.T) {
	spec, texts := logFixture(t)
	ts := newServer(t, spec)
	gunzip := func(b []byte) string {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	for path, text := range texts {
		for _, tc := range []struct {
			name, accept string
			gzip         bool
		}{
			{"gzip", "gzip", true},
			{"gzip among others", "br;q=1.0, gzip;q=0.5, *;q=0", true},
			{"any", "*", true},
			{"identity", "identity", false},
			{"gzip refused", "gzip;q=0", false},
			{"none", "", false},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				resp, body := fetch(t, ts, path+"/raw", "Accept-Encoding", tc.accept)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatalf("code %d, headers %v", resp.StatusCode, resp.Header)
				}
				got := string(body)
				if enc := resp.Header.Get("Content-Encoding"); tc.gzip != (enc == "gzip") {
					t.Fatalf("Content-Encoding %q for Accept-Encoding %q", enc, tc.accept)
				}
				if tc.gzip {
					got = gunzip(body)
				}
				if got != text {
					t.Errorf("raw log: %d bytes %.60q, want %d bytes %.60q", len(got), got, len(text), text)
				}
			})
		}
	}
	latest, _ := get(t, ts, "GET", "/log/sid/arm64/hello_2.10-3/raw")
	if latest.StatusCode != 200 {
		t.Errorf("latest raw: %d", latest.StatusCode)
	}
}

// TestLogHead: HEAD of a log's page, JSON or raw form has GET's code and
// headers and no body, and lets go of what the answer held.
func TestLogHead(t *testing.T) {
	spec, _ := logFixture(t)
	ts := newServer(t, spec)
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	do := func(method, path, accept string) (*http.Response, []byte) {
		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", accept)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	for _, tc := range []struct{ path, accept string }{
		{"/log/sid/amd64/gcc_13-1", ""},
		{"/api/log/sid/amd64/gcc_13-1", ""},
		{"/log/sid/amd64/gcc_13-1/raw", "gzip"},
		{"/log/sid/amd64/gcc_13-1/raw", "identity"},
	} {
		t.Run(tc.path+"/"+tc.accept, func(t *testing.T) {
			get, body := do("GET", tc.path, tc.accept)
			head, none := do("HEAD", tc.path, tc.accept)
			if get.StatusCode != 200 || head.StatusCode != 200 || len(none) != 0 {
				t.Fatalf("GET %d, HEAD %d with %d bytes", get.StatusCode, head.StatusCode, len(none))
			}
			for _, name := range []string{"Content-Type", "Content-Encoding", "Content-Length"} {
				if g, h := get.Header.Get(name), head.Header.Get(name); g != h {
					t.Errorf("%s: GET %q, HEAD %q", name, g, h)
				}
			}
			if n := get.Header.Get("Content-Length"); n != "" && n != fmt.Sprint(len(body)) {
				t.Errorf("Content-Length %s of %d bytes", n, len(body))
			}
			settle(t, 0)
		})
	}
}

// TestHeadTail: the kept start and end of a stream, and the count.
func TestHeadTail(t *testing.T) {
	for _, tc := range []struct {
		writes     []string
		head, tail string
	}{
		{nil, "", ""},
		{[]string{"abc"}, "abc", ""},
		{[]string{"abcd", "ef"}, "abcd", "ef"},
		{[]string{"abcdefgh"}, "abcd", "efgh"},
		{[]string{"abcdefghij"}, "abcd", "ghij"},
		{[]string{"ab", "cdefg", "hijklmn", "o"}, "abcd", "lmno"},
	} {
		h := &headTail{n: 4}
		total := 0
		for _, w := range tc.writes {
			h.Write([]byte(w))
			total += len(w)
		}
		if string(h.head) != tc.head || string(h.tailBytes()) != tc.tail || h.total != int64(total) {
			t.Errorf("%q: head %q tail %q total %d; want %q %q %d", tc.writes, h.head, h.tailBytes(), h.total, tc.head, tc.tail, total)
		}
	}
}
