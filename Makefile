# clustermon -- one non-recursive Makefile, all output under build/.
#
#   make            build the four programs
#   make check      unit suites (Check) + end-to-end tests
#   make demo       run the demo on the embedded default config
#   make bench      benchmarks (figures as ratios against a baseline)
#   make memcheck   unit suites and the daemon path under valgrind
#   make SANITIZE=1 ...   the same with ASan + UBSan
#
# Every target first runs .ci/ensure-deps, which installs the Debian packages
# listed in .ci/packages.txt (as root) or names the missing ones.

B ?= build
SANITIZE ?= 0
VERSION := 0.1.0

CC ?= cc
# V=1 shows the full compiler command lines
Q := $(if $(filter 1,$(V)),,@)
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wcast-qual -Wformat=2 -Wvla -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -fno-strict-aliasing \
          -DCLUSTERMON_VERSION='"$(VERSION)"' -I. -I$(B)/gen
LDFLAGS ?=
ifeq ($(SANITIZE),1)
  B := build/sanitize
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

PKGS_DAEMON := libzmq libuv msgpack inih zlib libsystemd
PKGS_AGENT := libzmq msgpack
PKGS_CLIENT := libzmq msgpack jansson
PKGS_TEST := check
# http-parser ships no pkg-config file
LIBS_DAEMON := -lhttp_parser
# pkg-config is only asked once the dependencies are known to be there.
pc = $(shell pkg-config $(1) $(2) 2>/dev/null)

DEPS_STAMP := build/.deps-ok

PROTO_SRC := $(wildcard proto/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
AGENTS_SRC := $(filter-out agents/clustermon-agent.c agents/clustermon-sub.c,$(wildcard agents/*.c))
CTL_SRC := $(wildcard daemon/ctl/*.c)
TEST_SRC := $(wildcard tests/check_*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
PROTO_OBJ := $(call obj,$(PROTO_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC)) $(B)/obj/gen/default_conf.o
AGENTS_OBJ := $(call obj,$(AGENTS_SRC))

BINS := $(B)/clustermond $(B)/clustermon-agent $(B)/clustermon-sub $(B)/clustermonctl
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
TOOLS := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(wildcard tests/tools/*.c))

.SECONDARY:
.PHONY: all check unit e2e demo bench memcheck clean deps fmt
.DEFAULT_GOAL := all

all: $(BINS)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): .ci/packages.txt .ci/ensure-deps
	@.ci/ensure-deps
	@mkdir -p $(@D) && touch $@

# Every object waits for the dependency check (order-only: no rebuilds).
$(B)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(call pc,--cflags,$(PKGS_DAEMON) $(PKGS_CLIENT) $(PKGS_TEST)) -MMD -MP -c $< -o $@

# The default config is compiled in, so `clustermond` runs with no arguments.
$(B)/gen/default_conf.c: daemon/clustermond.conf
	@mkdir -p $(@D)
	@{ echo '/* generated from daemon/clustermond.conf by the Makefile */'; \
	   echo 'extern const char clustermond_default_conf[];'; \
	   echo 'const char clustermond_default_conf[] = {'; \
	   od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	   echo '0x00 };'; } > $@
$(B)/obj/gen/default_conf.o: $(B)/gen/default_conf.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/libproto.a: $(PROTO_OBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libdaemon.a: $(DAEMON_OBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libagents.a: $(AGENTS_OBJ)
	@rm -f $@; ar rcs $@ $^

$(B)/clustermond: $(B)/obj/daemon/main.o $(B)/libdaemon.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_DAEMON)) $(LIBS_DAEMON) -lcsv -lm
$(B)/clustermon-agent: $(B)/obj/agents/clustermon-agent.o $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT)) -lcsv -lm
$(B)/clustermon-sub: $(B)/obj/agents/clustermon-sub.o $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT)) -lcsv -lm
$(B)/clustermonctl: $(call obj,$(CTL_SRC)) $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT)) -lcsv -lm

$(B)/tests/%: $(B)/obj/tests/%.o $(B)/libdaemon.a $(B)/libagents.a $(B)/libproto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_DAEMON) $(PKGS_CLIENT) $(PKGS_TEST)) $(LIBS_DAEMON) -lcsv -lm

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(B)/libproto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_AGENT)) -lm

# ---- tests ---------------------------------------------------------------

check: unit e2e

unit: $(TESTS)
	@fail=0; for t in $(TESTS); do echo "== $$t"; $$t || fail=1; done; \
	echo "== tests/check_demo_data.sh"; sh tests/check_demo_data.sh || fail=1; exit $$fail

E2E_SCRIPTS := tests/e2e.sh tests/durability.sh tests/rules_e2e.sh tests/reload_e2e.sh tests/spool_e2e.sh tests/ops.sh

e2e: $(BINS) $(TOOLS)
	@fail=0; for t in $(E2E_SCRIPTS); do echo "== $$t"; BIN=$(B) bash $$t || fail=1; done; exit $$fail

memcheck: $(TESTS) $(BINS) $(TOOLS)
	@fail=0; for t in $(TESTS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    $$t || fail=1; done; \
	BIN=$(B) VALGRIND=1 bash tests/e2e.sh || fail=1; exit $$fail

demo: $(BINS)
	@BIN=$(B) tests/demo.sh

bench: $(BINS) $(B)/bench_proto $(TOOLS)
	@BIN=$(B) tests/bench.sh

$(B)/bench_proto: $(B)/obj/tests/bench/bench_proto.o $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_AGENT)) -lm

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ---- install / uninstall ---------------------------------------------------
#
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/pkg] [SYSCONFDIR=/etc]
#   make uninstall (same variables)
#
# Programs, systemd units (their paths rewritten for PREFIX and SYSCONFDIR),
# sysusers.d and tmpfiles.d entries, man pages, the README, example settings
# and the Grafana dashboard. The config and firm registry in
# SYSCONFDIR/clustermon are installed only if absent, and uninstall removes
# them only if they are still as installed: an administrator's edits stay.

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/clustermon
DATADIR ?= $(PREFIX)/share/clustermon
CONFDIR := $(SYSCONFDIR)/clustermon

INSTALL_PROGS := clustermond clustermon-agent clustermon-sub clustermonctl
INSTALL_UNITS := clustermond.service clustermon-agent@.service clustermon-agent@.timer \
                 clustermon-sub@.service
MAN1 := $(wildcard daemon/man/*.1)
MAN5 := $(wildcard daemon/man/*.5)
UNIT_SED := -e 's|/usr/bin/|$(BINDIR)/|g' -e 's|/etc/clustermon|$(CONFDIR)|g'

.PHONY: install uninstall

# The installed config: the default one, with the service's paths and the
# Prometheus endpoint on.
$(B)/dist/clustermond.conf: daemon/clustermond.conf Makefile
	@mkdir -p $(@D)
	@sed -e 's|^state_dir = .*|state_dir = /var/lib/clustermond          ; systemd StateDirectory=|' \
	     -e 's|^registry = .*|registry = $(CONFDIR)/registry.csv  ; replace with your firms|' \
	     -e '/^http = /d' \
	     -e 's|^\[daemon\]$$|[daemon]\nhttp = 127.0.0.1:9730                ; Prometheus /metrics and /healthz|' \
	     $< > $@

install: $(BINS) $(B)/dist/clustermond.conf
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DATADIR) $(DESTDIR)$(CONFDIR)
	install -m 0755 $(addprefix $(B)/,$(INSTALL_PROGS)) $(DESTDIR)$(BINDIR)/
	@for u in $(INSTALL_UNITS); do \
	    sed $(UNIT_SED) systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	    echo "install systemd/$$u -> $(DESTDIR)$(UNITDIR)/$$u"; done
	install -m 0644 systemd/clustermon.sysusers $(DESTDIR)$(SYSUSERSDIR)/clustermon.conf
	sed $(UNIT_SED) systemd/clustermon.tmpfiles > $(DESTDIR)$(TMPFILESDIR)/clustermon.conf
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 systemd/agent.conf.example systemd/sub.conf.example \
	    systemd/prometheus.yml.example $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 systemd/grafana-dashboard.json $(DESTDIR)$(DATADIR)/
	@for f in clustermond.conf:$(B)/dist/clustermond.conf registry.csv:daemon/demo/registry.csv; do \
	    dst=$(DESTDIR)$(CONFDIR)/$${f%%:*}; \
	    if [ -e $$dst ]; then echo "keep    $$dst (exists)"; \
	    else install -m 0644 $${f#*:} $$dst && echo "install $${f#*:} -> $$dst"; fi; done

uninstall: $(B)/dist/clustermond.conf
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_PROGS))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(INSTALL_UNITS))
	rm -f $(DESTDIR)$(SYSUSERSDIR)/clustermon.conf $(DESTDIR)$(TMPFILESDIR)/clustermon.conf
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)
	@for f in clustermond.conf:$(B)/dist/clustermond.conf registry.csv:daemon/demo/registry.csv; do \
	    dst=$(DESTDIR)$(CONFDIR)/$${f%%:*}; \
	    if [ ! -e $$dst ]; then :; \
	    elif cmp -s $${f#*:} $$dst; then rm -f $$dst && echo "rm $$dst"; \
	    else echo "keep    $$dst (changed since it was installed)"; fi; done
	-@rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true

