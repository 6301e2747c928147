// Package web is wanna-build's status web (wanna-build --web ADDR): a
// read-only HTTP server over the queue. It owns the pages (the overview of
// every distribution and architecture, a package across them with its
// kept builds (their class and resources) and history, one queue's list
// and its required build machine revision, every builder's heartbeats,
// idle or not (silent, quarantined), what a builder is building and the
// revisions of its machines (and where it takes nothing for want of the
// required one), a build log from the queue's log store), their JSON
// form under /api/, the Prometheus metrics, the one-sentence answer to
// "why isn't it building?" (for a Needs-Build package down to its
// estimated start: estimate.go), and how the queue's data (text from
// outside) is shown: escaped, control bytes and invisible format
// characters (bidi controls, zero-width characters) made visible, long
// texts cut. A bbolt queue is opened read-only for each request, so it
// is never locked between requests; a few PostgreSQL connections are
// kept open.
package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// Server serves the status pages of one queue.
type Server struct {
	DB      string           // a wanna_build_db value: a bbolt file or a postgres:// URL
	Timeout time.Duration    // waiting for the lock or the connection; 0 is store.DefaultTimeout
	Now     func() time.Time // the clock of calprio and ages; nil is time.Now
	Log     *log.Logger      // errors of the store; nil is log.Default()

	handleOnce  sync.Once
	handle      *store.Handle // the queue, kept for the server's life (see withStore)
	cache       cache         // pages and metrics, while the queue does not change
	healthCache cache         // each queue's health (health.go), while it does not change
	digestCache digestCache   // the history's digests, while it does not change
}

// withStore runs fn on the queue, read-only: a bbolt file is opened for
// the request, so its lock is not held between requests; a PostgreSQL
// pool of at most 4 connections is kept for the server's life, so a page
// costs no connection and no schema check.
func (s *Server) withStore(fn func(db queue.Store) error) error {
	return s.queue().With(true, fn)
}

// queue is the server's handle on the queue, made on first use.
func (s *Server) queue() *store.Handle {
	s.handleOnce.Do(func() {
		timeout := s.Timeout
		if timeout <= 0 {
			timeout = store.DefaultTimeout
		}
		s.handle = store.NewHandle(s.DB, store.Options{ReadOnly: true, Timeout: timeout, MaxConns: 4})
	})
	return s.handle
}

// Close closes what the server keeps of the queue.
func (s *Server) Close() error { return s.queue().Close() }

// request is what a page is made from.
type request struct {
	s   *Server
	db  queue.Store
	now time.Time
	r   *http.Request
}

// page makes the data of one page, which is both the HTML template's and
// the JSON answer.
type page struct {
	tmpl string
	data func(q *request) (any, error)
}

// httpError is an answer other than 200, with its message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// busy is a 503: the server has no room for the request now.
func busy(format string, args ...any) error {
	return &httpError{http.StatusServiceUnavailable, fmt.Sprintf(format, args...)}
}

// retryAfter is the Retry-After of a 503, in seconds: about the time in
// which a log answer is written or its stalled client dropped (logStall),
// or a writer lets go of a bbolt queue's lock.
const retryAfter = "10"

// eachQueue runs fn in a read-only transaction on every (distribution,
// architecture) queue of db, in Pairs' order.
func eachQueue(db queue.Store, fn func(queue.Pair, queue.Tx) error) error {
	pairs, err := db.Pairs()
	if err != nil {
		return err
	}
	for _, pr := range pairs {
		if err := db.View(pr.Dist, pr.Arch, func(tx queue.Tx) error { return fn(pr, tx) }); err != nil {
			return err
		}
	}
	return nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []struct {
		pattern string
		page    page
	}{
		{"/{$}", page{"overview", overviewData}},
		{"/package/{src}", page{"package", packageData}},
		{"/dist/{dist}/{arch}", page{"dist", distData}},
		{"/builder/{name}", page{"builder", builderData}},
		{"/builders", page{"builders", buildersData}},
	} {
		mux.Handle(p.pattern, s.serve(p.page, false))
		mux.Handle("/api"+p.pattern, s.serve(p.page, true))
	}
	mux.HandleFunc("/metrics", s.metrics)
	s.logRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, strings.HasPrefix(r.URL.Path, "/api/"), notFound("no such page: %s", clip(visible(r.URL.Path), maxLine)))
	})
	return readOnly(mux)
}

// readOnly answers 405 to anything but GET and HEAD.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) serve(p page, api bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		err := s.withStore(func(db queue.Store) error {
			v, err := s.cached(db, r.URL.Path+"?"+r.URL.RawQuery, func() (any, error) {
				data, err := p.data(&request{s: s, db: db, now: s.now(), r: r})
				if err != nil {
					return nil, err
				}
				var b bytes.Buffer
				if api {
					err = writeJSON(&b, data)
				} else {
					err = pages.ExecuteTemplate(&b, p.tmpl, data)
				}
				return b.Bytes(), err
			})
			if err == nil {
				body = v.([]byte)
			}
			return err
		})
		if err != nil {
			s.fail(w, api, err)
			return
		}
		header(w, api)
		w.Write(body)
	})
}

func writeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func header(w http.ResponseWriter, api bool) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if api {
		h.Set("Content-Type", "application/json")
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
}

// fail answers err: its own code for an httpError, 503 when the queue is
// locked, else 500; the store's errors (not an httpError) are logged, and
// a 503 says when to try again (Retry-After).
func (s *Server) fail(w http.ResponseWriter, api bool, err error) {
	code, msg := http.StatusInternalServerError, err.Error()
	var he *httpError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, queue.ErrLocked):
		code = http.StatusServiceUnavailable
	}
	if he == nil {
		l := s.Log
		if l == nil {
			l = log.Default()
		}
		l.Printf("wanna-build --web: %v", err)
	}
	var b bytes.Buffer
	e := errorPage{Code: code, Status: http.StatusText(code), Error: msg}
	if api {
		writeJSON(&b, e)
	} else {
		pages.ExecuteTemplate(&b, "error", e)
	}
	header(w, api)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// errorPage is the answer of a failed request.
type errorPage struct {
	Code   int    `json:"code"`
	Status string `json:"status"`
	Error  string `json:"error"`
}
