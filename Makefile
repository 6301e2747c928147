# buildd in Go. `make` builds the five programs into bin/; `make test` runs
# every test (installing the Debian packages the real-part tests need when
# they are missing); `make install PREFIX=...` installs.

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
PROGS    := buildd buildd-mail buildd-uploader buildd-watcher wanna-build
EMACS    ?= emacs

# Debian packages the tests and the demo drive for real.
DEB_DEPS := btrfs-progs debootstrap dpkg-dev fakeroot gnupg emacs-nox reprepro \
            dput dose-builddebcheck xz-utils debhelper procps mu4e elpa-notmuch notmuch \
            openssh-server openssh-client apt-utils dupload kmod

.PHONY: all test test-go test-elisp test-fresh deps install demo demo-clean bench clean FORCE

all: $(addprefix bin/,$(PROGS))

bin/wanna-build: FORCE
	$(GO) build -o $@ ./wannabuild/wanna-build

bin/%: FORCE
	$(GO) build -o $@ ./$*

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

test: deps all test-go test-elisp

test-go:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 80m ./...

test-elisp: bin/buildd-mail
	$(MAKE) -C elisp test EMACS=$(EMACS)

# test-fresh: `make test` as root inside a freshly debootstrapped bookworm
# holding only the base image's tools and a fresh clone of HEAD (not in CI:
# about 10 minutes).
test-fresh:
	internal/hostdeps/test-fresh.sh

demo: all
	buildd/demo/demo.sh run

demo-clean:
	buildd/demo/demo.sh clean

bench: all
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# install: the programs, buildd-reply.el, /etc/cron.d/buildd and the
# systemd units (buildd.service; buildd-watcher.service for --schedule;
# buildd-mail.service for the LMTP listener).
SYSTEMD_DIR ?= /lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/emacs/site-lisp \
	  $(DESTDIR)/etc/cron.d $(DESTDIR)$(SYSTEMD_DIR)
	install -m 755 $(addprefix bin/,$(PROGS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 elisp/buildd-reply.el $(DESTDIR)$(PREFIX)/share/emacs/site-lisp/
	for f in buildd.cron:/etc/cron.d/buildd buildd.service:$(SYSTEMD_DIR)/buildd.service \
	         buildd-watcher.service:$(SYSTEMD_DIR)/buildd-watcher.service \
	         buildd-mail.service:$(SYSTEMD_DIR)/buildd-mail.service; do \
	  sed 's|@BINDIR@|$(PREFIX)/bin|g' buildd-watcher/dist/$${f%%:*} > $(DESTDIR)$${f#*:} && \
	  chmod 644 $(DESTDIR)$${f#*:}; \
	done

clean:
	rm -rf bin

FORCE:
