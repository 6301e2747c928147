# buildd in Go. `make` builds the five programs into bin/; `make test` runs
# every test (installing the Debian packages the real-part tests need when
# they are missing); `make install PREFIX=...` installs; `make deb` builds
# the Debian packages into bin/deb/ and `make test-deb` installs, uses and
# purges them in a fresh bookworm.

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
PROGS    := buildd buildd-mail buildd-uploader buildd-watcher wanna-build
EMACS    ?= emacs
VERSION  ?= $(shell dpkg-parsechangelog -l debian/changelog -SVersion 2>/dev/null || echo dev)

# Debian packages the tests and the demo drive for real.
DEB_DEPS := btrfs-progs debootstrap dpkg-dev fakeroot gnupg emacs-nox reprepro \
            dput dose-builddebcheck xz-utils debhelper procps mu4e elpa-notmuch notmuch \
            openssh-server openssh-client apt-utils dupload kmod postgresql pgbouncer chromium \
            qemu-user-static go-md2man

.PHONY: all man binfmt test test-deb-as-root test-go test-elisp test-fresh test-real test-foreign bench-foreign test-chaos test-chaos-broken deps install install-programs install-elisp deb test-deb demo demo-clean bench bench-sbuild bench-real clean FORCE

all: $(addprefix bin/,$(PROGS))

bin/wanna-build: FORCE
	$(GO) build -o $@ ./wannabuild/wanna-build

bin/%: FORCE
	$(GO) build -o $@ ./$*

# man: the manual pages (buildd(1), wanna-build(1), buildd-mail(1),
# buildd-uploader(1), buildd-watcher(1), buildd.conf(5)) and the commented
# example buildd.conf, made from README.md (package man) into bin/man/;
# go-md2man turns the pages into roff.
man: FORCE
	$(GO) run ./man/mkman -version $(VERSION) -out bin/man
	for f in bin/man/*.md; do go-md2man -in $$f -out $${f%.md} || exit 1; done

# deps installs what the tests need when it is missing (as root, from the
# host's own apt sources).
deps:
	@missing=""; for p in $(DEB_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: not root, cannot install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(MAKE) -s binfmt

# binfmt registers qemu-user for arm64 with the kernel (binfmt_misc
# mounted, qemu-aarch64 from qemu-user-static's binfmt.d file, which has
# the fix-binary flag), as systemd-binfmt does at boot, for the emulated
# machines' tests. As root; a host that has it already is left alone.
BINFMT := /proc/sys/fs/binfmt_misc
binfmt:
	@if [ "$$(id -u)" = 0 ]; then \
	  [ -e $(BINFMT)/status ] || mount -t binfmt_misc binfmt_misc $(BINFMT); \
	  [ -e $(BINFMT)/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf > $(BINFMT)/register; \
	fi

test: deps all test-go test-elisp test-deb-as-root

# test-deb-as-root is make test-deb, skipped loudly without root.
test-deb-as-root:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) test-deb; else echo "SKIPPED: make test-deb needs root" >&2; fi

# test-go runs every Go test, then the queue's tests again on PostgreSQL
# (a cluster of their own, in a temporary directory): the conformance suite
# of the two stores.
QUEUE_PKGS := ./wannabuild/... ./internal/queue/...
test-go:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 80m ./...
	BUILDD_TEST_STORE=postgres $(GO) test -count=1 -timeout 30m $(QUEUE_PKGS)

test-elisp: bin/buildd-mail
	$(MAKE) -C elisp test EMACS=$(EMACS)

# test-fresh: `make test` as root inside a freshly debootstrapped bookworm
# holding only the base image's tools and a fresh clone of HEAD (not in CI:
# about 17 minutes).
test-fresh:
	internal/hostdeps/test-fresh.sh

# test-real: as root, builds real bookworm sources from the mirror in the
# host's apt sources with bin/buildd, taken from a queue merged by
# bin/wanna-build from the real indexes in REAL_DATA, and checks each
# .changes against Debian's Packages (buildd/realbuilds). Not in make test
# or CI (it needs the indexes and the mirror, and takes minutes). It holds
# /var/lock/buildd-realbuilds.lock (flock) so no other heavy run shares the
# machine; the test takes the lock itself when run without make.
REAL_DATA ?= $(CURDIR)/../shared/data/debian-bookworm-main
test-real: deps all
	BUILDD_REAL_DATA=$(REAL_DATA) BUILDD_REALBUILDS_LOCKED=1 flock /var/lock/buildd-realbuilds.lock \
	  $(GO) test -tags realbuilds -count=1 -timeout 60m -v ./buildd/realbuilds/

# test-foreign: as root, the real bookworm hello built for arm64 on this
# host, in an emulated machine (qemu-user) and cross, each checked against
# Debian's Packages-arm64 (buildd/realbuilds/foreign_test.go; also part of
# test-real). bench-foreign: its Job-Times beside a native build, and the
# time to create an emulated machine beside a native one.
test-foreign: deps all
	BUILDD_REAL_DATA=$(REAL_DATA) BUILDD_REALBUILDS_LOCKED=1 flock /var/lock/buildd-realbuilds.lock \
	  $(GO) test -tags realbuilds -count=1 -timeout 60m -v -run TestForeignBuilds ./buildd/realbuilds/
bench-foreign: deps all
	BUILDD_REAL_DATA=$(REAL_DATA) BUILDD_REALBUILDS_LOCKED=1 flock /var/lock/buildd-realbuilds.lock \
	  $(GO) test -tags realbuilds -run '^$$' -bench Foreign -benchtime 1x -timeout 90m ./buildd/realbuilds/

# test-chaos: the chaos run of buildd/daemon/chaos_test.go (eight real
# buildd processes on one PostgreSQL queue, buildd-mail, buildd-uploader,
# faults drawn from a seed; the invariants checked from the queue, the
# homes and the upload target), its long variant CHAOS_RUNS times in a
# row, each with a fresh seed, or once per seed in CHAOS_SEEDS (a failing
# run prints its seed: rerun with CHAOS_SEEDS=SEED). Not in CI (minutes);
# the short variant (a fresh seed, about two minutes) is TestChaos in make
# test. test-chaos-broken is the test of the test: the same run
# against a buildd whose lease renewal is disabled (built with -tags
# chaosbroken from buildd/daemon/chaosbroken) must break an invariant.
# Both hold /var/lock/buildd-realbuilds.lock, as test-real does.
CHAOS_RUNS  ?= 3
CHAOS_SEEDS ?=
test-chaos: deps all
	BUILDD_CHAOS_LOCKED=1 flock /var/lock/buildd-realbuilds.lock sh -c '\
	  seeds="$(CHAOS_SEEDS)"; \
	  [ -n "$$seeds" ] || seeds=$$(for i in $$(seq $(CHAOS_RUNS)); do od -An -N4 -tu4 /dev/urandom; done); \
	  for seed in $$seeds; do \
	    BUILDD_CHAOS_SEED=$$seed BUILDD_CHAOS_LONG=1 $(GO) test -count=1 -timeout 40m -run "^TestChaos$$" -v ./buildd/daemon/ || exit 1; \
	  done'

test-chaos-broken: deps all
	BUILDD_CHAOS_LOCKED=1 BUILDD_CHAOS_BROKEN=1 flock /var/lock/buildd-realbuilds.lock \
	  $(GO) test -count=1 -timeout 30m -run '^TestChaosBroken$$' -v ./buildd/daemon/

demo: all
	buildd/demo/demo.sh run

demo-clean:
	buildd/demo/demo.sh clean

bench: all
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# bench-sbuild: as root, the same packages built by Debian's sbuild (schroot
# btrfs-snapshot) and by `buildd build` from one machine revision, alternating;
# installs sbuild and schroot itself (not in DEB_DEPS: no test needs them).
bench-sbuild: deps all
	buildd/build/sbuild-bench.sh

# bench-real: as root, first builds of a sample of 20 real bookworm sources
# from the mirror, the code before issue 26 beside ours (see the script's
# head). Not in make test or CI: it takes about 20 minutes.
bench-real: deps all
	buildd/build/real-bench.sh

# install: the programs and their manual pages, from dist/
# /etc/cron.d/buildd (its jobs commented out) and the systemd units
# (buildd.service; buildd-watcher.service for --schedule;
# buildd-mail.service for the LMTP listener), none enabled; and
# buildd-reply.el. The Debian package (debian/rules) installs the programs
# so and ships buildd-reply.el the Debian way (elpa-buildd-reply).
SYSTEMD_DIR ?= /lib/systemd/system
MAN_DIR     ?= $(PREFIX)/share/man
install: install-programs install-elisp

install-programs: all man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/cron.d $(DESTDIR)$(SYSTEMD_DIR) \
	  $(DESTDIR)$(MAN_DIR)/man1 $(DESTDIR)$(MAN_DIR)/man5
	install -m 755 $(addprefix bin/,$(PROGS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 bin/man/*.1 $(DESTDIR)$(MAN_DIR)/man1/
	install -m 644 bin/man/*.5 $(DESTDIR)$(MAN_DIR)/man5/
	for f in buildd.cron:/etc/cron.d/buildd buildd.service:$(SYSTEMD_DIR)/buildd.service \
	         buildd-watcher.service:$(SYSTEMD_DIR)/buildd-watcher.service \
	         buildd-mail.service:$(SYSTEMD_DIR)/buildd-mail.service; do \
	  sed 's|@BINDIR@|$(PREFIX)/bin|g' dist/$${f%%:*} > $(DESTDIR)$${f#*:} && \
	  chmod 644 $(DESTDIR)$${f#*:} || exit 1; \
	done

install-elisp:
	install -d $(DESTDIR)$(PREFIX)/share/emacs/site-lisp
	install -m 644 elisp/buildd-reply.el $(DESTDIR)$(PREFIX)/share/emacs/site-lisp/

# deb: the Debian packages buildd-go and elpa-buildd-reply, built by
# dpkg-buildpackage from a copy of this checkout with its Go modules
# vendored (fetched from the module proxy here; the package build itself
# runs without network, in a network namespace of its own when root), into
# bin/deb/. Installs the build-dependencies when missing (as root).
deb:
	dist/make-deb.sh

# test-deb: as root, make deb, then in a fresh debootstrapped bookworm:
# apt-get install of the packages, every program's --help and manual
# page, systemd-analyze verify of the units, the demo's loop with the
# installed programs, and a purge that leaves nothing the packages made
# (a before/after listing of the tree); lintian on the packages on this
# host. Part of make test (about two minutes).
test-deb:
	dist/test-deb.sh

clean:
	rm -rf bin

FORCE:
