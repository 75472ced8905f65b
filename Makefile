# clustermon -- one non-recursive Makefile, all output under build/.
#
#   make            build the four programs
#   make check      unit suites (Check) + end-to-end tests
#   make demo       run the demo on the embedded default config
#   make bench      benchmarks (figures as ratios against a baseline)
#   make memcheck   unit suites and the daemon paths (e2e, security) under valgrind
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

# the daemon reads a firm's uploaded CSV or spreadsheet with the agents' own
# reader (daemon/webupload.c), hence libzip, expat and FreeXL there too
PKGS_DAEMON := libzmq libuv msgpack inih zlib libsystemd jansson libsodium libzip expat freexl \
               libprotobuf-c
PKGS_AGENT := libzmq msgpack inih
PKGS_CLIENT := libzmq msgpack jansson inih libzip expat freexl
PKGS_TEST := check
# http-parser ships no pkg-config file
LIBS_DAEMON := -lhttp_parser -lsnappy
# pkg-config is only asked once the dependencies are known to be there.
pc = $(shell pkg-config $(1) $(2) 2>/dev/null)

DEPS_STAMP := build/.deps-ok

PROTO_SRC := $(wildcard proto/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
AGENTS_SRC := $(filter-out agents/clustermon-agent.c agents/clustermon-sub.c agents/clustermon-relay.c,\
                             $(wildcard agents/*.c))
CTL_SRC := $(wildcard daemon/ctl/*.c)
TEST_SRC := $(wildcard tests/check_*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
PROTO_OBJ := $(call obj,$(PROTO_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC)) $(B)/obj/gen/default_conf.o $(B)/obj/gen/web_assets.o \
              $(B)/obj/gen/daemon/remotewrite.pb-c.o
AGENTS_OBJ := $(call obj,$(AGENTS_SRC))

BINS := $(B)/clustermond $(B)/clustermon-agent $(B)/clustermon-sub $(B)/clustermonctl \
        $(B)/clustermon-relay
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
TOOLS := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(wildcard tests/tools/*.c))

.SECONDARY:
.PHONY: fmt-check lint all check unit e2e demo bench memcheck clean deps fmt
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

# Prometheus remote-write: the WriteRequest's C code is generated from
# daemon/remotewrite.proto by protoc-c at build time (only the .proto is in
# the repository), and compiled without our warnings (it is not our code).
$(B)/gen/daemon/remotewrite.pb-c.c $(B)/gen/daemon/remotewrite.pb-c.h: daemon/remotewrite.proto | $(DEPS_STAMP)
	@mkdir -p $(B)/gen
	@$(if $(Q),echo "  PROTOC  $<")
	$(Q)protoc-c --c_out=$(B)/gen $<
$(B)/obj/gen/daemon/remotewrite.pb-c.o: $(B)/gen/daemon/remotewrite.pb-c.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -std=c11 -I$(B)/gen $(filter -fsanitize% -fno-omit%,$(CFLAGS)) -c $< -o $@
$(B)/obj/daemon/rwencode.o $(B)/obj/daemon/remotewrite.o $(B)/obj/daemon/server.o \
$(B)/obj/daemon/config.o $(B)/obj/daemon/metrics.o $(B)/obj/tests/check_rwencode.o: \
    $(B)/gen/daemon/remotewrite.pb-c.h

# The dashboard (daemon/web/) and its chart library are compiled in too: the
# daemon serves every byte its pages load. npm installs the library from the
# registry at build time, exactly as daemon/web/package-lock.json pins it,
# into build/npm/ (never the source tree); nothing is fetched at run time.
NPM_CI := npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
WEB_NPM := build/npm/web
WEB_FILES := /index.html=daemon/web/index.html /app.js=daemon/web/app.js \
             /app.css=daemon/web/app.css \
             /echarts.min.js=$(WEB_NPM)/node_modules/echarts/dist/echarts.common.min.js
$(WEB_NPM)/.ok: daemon/web/package.json daemon/web/package-lock.json | $(DEPS_STAMP)
	@rm -rf $(@D) && mkdir -p $(@D)
	@cp daemon/web/package.json daemon/web/package-lock.json $(@D)/
	@echo "  NPM     $(@D) (daemon/web/package-lock.json)"
	$(Q)cd $(@D) && $(NPM_CI)
	@touch $@
$(B)/gen/web_assets.c: daemon/web/embed.sh $(WEB_NPM)/.ok $(filter daemon/web/%,$(foreach f,$(WEB_FILES),$(lastword $(subst =, ,$(f)))))
	@mkdir -p $(@D)
	$(Q)sh daemon/web/embed.sh $@ $(WEB_FILES)
$(B)/obj/gen/web_assets.o: $(B)/gen/web_assets.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/libproto.a: $(PROTO_OBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libdaemon.a: $(DAEMON_OBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libagents.a: $(AGENTS_OBJ)
	@rm -f $@; ar rcs $@ $^

$(B)/clustermond: $(B)/obj/daemon/main.o $(B)/libdaemon.a $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_DAEMON)) $(LIBS_DAEMON) -lcsv -lm
$(B)/clustermon-agent: $(B)/obj/agents/clustermon-agent.o $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT)) -lcsv -lm
$(B)/clustermon-sub: $(B)/obj/agents/clustermon-sub.o $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT)) -lcsv -lm
# the relay reads the daemon's access-file format with the daemon's CSV reader
$(B)/clustermon-relay: $(B)/obj/agents/clustermon-relay.o $(B)/obj/daemon/csvtable.o \
                       $(B)/obj/daemon/xalloc.o $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_AGENT)) -lcsv -lpthread -lm
# passwd makes http_users entries with the daemon's own reader of them
$(B)/clustermonctl: $(call obj,$(CTL_SRC)) $(B)/obj/daemon/webusers.o $(B)/obj/daemon/xalloc.o \
                    $(B)/libagents.a $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT) libsodium) -lcsv -lm

# tests/testlib.c: the suites' shared fixtures (temp dirs, files, configs)
$(B)/tests/%: $(B)/obj/tests/%.o $(B)/obj/tests/testlib.o $(B)/libdaemon.a $(B)/libagents.a $(B)/libproto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_DAEMON) $(PKGS_CLIENT) $(PKGS_TEST)) $(LIBS_DAEMON) -lcsv -lm

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(B)/libproto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_AGENT)) -lm
# the bench's ceiling drains its socket through the daemon's own zpoll
$(B)/tests/tools/barerecv: $(B)/obj/tests/tools/barerecv.o $(B)/obj/daemon/zpoll.o \
                           $(B)/obj/daemon/log.o $(B)/libproto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_AGENT) libuv libsystemd) -lm

# clustermon-sim feeds through the agents' delivery engine (libagents.a)
$(B)/tests/tools/clustermon-sim: $(B)/obj/tests/tools/clustermon-sim.o $(B)/libagents.a $(B)/libproto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_CLIENT)) -lcsv -lm

# ---- tests ---------------------------------------------------------------

check: fmt-check lint unit fuzz-corpus e2e

unit: $(TESTS)
	@fail=0; for t in $(TESTS); do echo "== $$t"; $$t || fail=1; done; \
	echo "== tests/check_demo_data.sh"; sh tests/check_demo_data.sh || fail=1; exit $$fail

# one script a line: branches that add one do not collide
E2E_SCRIPTS := \
	tests/e2e.sh \
	tests/officials_e2e.sh \
	tests/durability.sh \
	tests/faults_e2e.sh \
	tests/rules_e2e.sh \
	tests/reload_e2e.sh \
	tests/firmsleave_e2e.sh \
	tests/spool_e2e.sh \
	tests/ops.sh \
	tests/hostile.sh \
	tests/privdrop_e2e.sh \
	tests/security_e2e.sh \
	tests/exactly_once_e2e.sh \
	tests/stall_e2e.sh \
	tests/control_e2e.sh \
	tests/conformance_e2e.sh \
	tests/sub_exec_e2e.sh \
	tests/restart_e2e.sh \
	tests/benchtools_e2e.sh \
	tests/sim_e2e.sh \
	tests/judge_e2e.sh \
	tests/feed_e2e.sh \
	tests/web_e2e.sh \
	tests/federation_e2e.sh \
	tests/relay_e2e.sh \
	tests/remotewrite_e2e.sh \
	tests/ha_e2e.sh

# The browser test's driver, playwright-core, as tests/web/package-lock.json
# pins it (Chromium itself is Debian's, from .ci/packages.txt).
build/npm/tests/.ok: tests/web/package.json tests/web/package-lock.json | $(DEPS_STAMP)
	@rm -rf $(@D) && mkdir -p $(@D)
	@cp tests/web/package.json tests/web/package-lock.json $(@D)/
	@echo "  NPM     $(@D) (tests/web/package-lock.json)"
	$(Q)cd $(@D) && $(NPM_CI)
	@touch $@

e2e: $(BINS) $(TOOLS) build/npm/tests/.ok
	@fail=0; for t in $(E2E_SCRIPTS); do echo "== $$t"; BIN=$(B) timeout 900 bash $$t || { echo "FAIL - $$t (exit $$?; 124 = over 15 min)"; fail=1; }; done; exit $$fail

memcheck: $(TESTS) $(BINS) $(TOOLS)
	@fail=0; for t in $(TESTS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    $$t || fail=1; done; \
	BIN=$(B) VALGRIND=1 bash tests/e2e.sh || fail=1; \
	BIN=$(B) VALGRIND=1 bash tests/security_e2e.sh || fail=1; exit $$fail

demo: $(BINS)
	@BIN=$(B) tests/demo.sh

bench: $(BINS) $(TOOLS)
	@BIN=$(B) tests/bench.sh

$(B)/bench_proto: $(B)/obj/tests/bench/bench_proto.o $(B)/libproto.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc,--libs,$(PKGS_AGENT)) -lm

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

# the files clang-format would change (with .clang-format): part of make check,
# so layout never needs a review comment
fmt-check: $(DEPS_STAMP)
	@n=0; for f in $$(git ls-files '*.c' '*.h'); do \
	  clang-format "$$f" | cmp -s - "$$f" || { echo "$$f"; n=$$((n + 1)); }; done; \
	echo "$$n files differ from .clang-format"; [ $$n = 0 ]

# README "How we write C": the rules clang-format cannot check (sizeof,
# declaration placement); .ci/lint names FILE:LINE and the fix. LINT_SKIP
# is for a file a branch is rewriting at the time; empty otherwise.
LINT_SKIP :=
lint: $(DEPS_STAMP)
	@.ci/lint $(filter-out $(LINT_SKIP),$(shell git ls-files 'proto/*.[ch]' 'agents/*.[ch]' 'daemon/*.[ch]')) && \
	  echo "lint: sizeof and declarations as README \"How we write C\" says"

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

INSTALL_PROGS := clustermond clustermon-agent clustermon-sub clustermonctl clustermon-relay
INSTALL_UNITS := clustermond.service clustermon-agent@.service clustermon-agent@.timer \
                 clustermon-sub@.service clustermon-relay.service
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
	install -m 0644 systemd/agent.conf.example systemd/sub.conf.example systemd/nginx-clustermon.conf.example \
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

# ---- fuzz ------------------------------------------------------------------
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="proto input"]
#       libFuzzer (clang + libclang-rt-14-dev, not in .ci/packages.txt: only
#       this target needs them) runs each target in tests/fuzz/ for
#       FUZZ_SECONDS, starting from tests/fuzz/corpus/<target>/; new inputs go
#       to build/fuzz/corpus/<target>/, crashes to build/fuzz/crashes/<target>/,
#       the full log to build/fuzz/fuzz_<target>.log. Exit 1 on a crash.
#       Targets: proto (wire decoders), config (clustermond.conf), registry
#       (firm registry CSV), input (the agent's sample CSV), keyfile (CURVE
#       .key/.pub files and server key arguments), access (the access file).
#   make fuzz-corpus
#       the seed corpus through the same targets built by $(CC) with ASan and
#       UBSan (tests/fuzz/replay.c stands in for libFuzzer): part of `check`.
#
# Both compile the sources the targets need straight into them (never the
# archives above, which are built without the sanitizers): every proto/,
# daemon/ and agents/ object goes into a sanitized archive of its own, and
# the linker takes from it only what a target uses.

FUZZ_TARGETS ?= proto config registry input keyfile access
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_SRC := $(PROTO_SRC) $(DAEMON_SRC) $(AGENTS_SRC)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_INC = $(call pc,--cflags,$(PKGS_DAEMON) $(PKGS_CLIENT))
FUZZ_LIBS = $(call pc,--libs,$(PKGS_DAEMON) $(PKGS_CLIENT)) $(LIBS_DAEMON) -lcsv -lm
# clang builds what others wrote without -Werror: a new clang warning in a
# daemon file must not stop the fuzzers (gcc's -Werror build still guards it).
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 $(filter-out -Werror,$(WARN)) -fno-strict-aliasing \
               -Wno-format-nonliteral -DCLUSTERMON_VERSION='"$(VERSION)"' -I. -I$(B)/gen $(FUZZ_SAN) \
               -fsanitize=fuzzer-no-link
FUZZ_OPTS := -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
             -error_exitcode=77 -timeout_exitcode=78
FUZZ_BINS := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))

REPLAY_DIR := $(B)/fuzz-replay
REPLAY_CFLAGS = $(CFLAGS) $(FUZZ_SAN)
REPLAY_BINS := $(patsubst %,$(REPLAY_DIR)/replay_%,$(FUZZ_TARGETS))
REPLAY_ENV := ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

.PHONY: fuzz fuzz-corpus fuzz-check-cc

# clang alone is not enough: libFuzzer and the sanitizer runtimes are in
# libclang-rt-14-dev, so try to link an empty target.
fuzz-check-cc:
	@mkdir -p $(FUZZ_DIR)
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' | \
	    $(FUZZ_CC) -x c - $(FUZZ_SAN) -fsanitize=fuzzer -o $(FUZZ_DIR)/.cc-ok > /dev/null 2>&1 || \
	    { echo "make fuzz needs clang and its libFuzzer runtime: apt-get install clang libclang-rt-14-dev" >&2; \
	      exit 2; }

$(FUZZ_DIR)/obj/%.o: %.c | $(DEPS_STAMP) fuzz-check-cc
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INC) -MMD -MP -c $< -o $@
$(FUZZ_DIR)/libsrc.a: $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SRC))
	@rm -f $@; ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/libsrc.a $(B)/obj/gen/web_assets.o \
                    $(B)/obj/gen/daemon/remotewrite.pb-c.o
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

fuzz: $(FUZZ_BINS)
	@clean=0; fail=0; for t in $(FUZZ_TARGETS); do \
	    corpus=$(FUZZ_DIR)/corpus/$$t; crashes=$(FUZZ_DIR)/crashes/$$t; log=$(FUZZ_DIR)/fuzz_$$t.log; \
	    mkdir -p $$corpus $$crashes; \
	    dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	    echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	    $(FUZZ_DIR)/fuzz_$$t $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) $$dict \
	        -artifact_prefix=$$crashes/ $$corpus tests/fuzz/corpus/$$t > $$log 2>&1; rc=$$?; \
	    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' $$log | sed 's/^/   /'; \
	    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' $$log | \
	        tr '\n' ' ' | sed -e 's/stat:://g' -e 's/^/   /'; echo; \
	    if [ $$rc != 0 ]; then fail=$$((fail + 1)); \
	        echo "CRASH - fuzz_$$t (exit $$rc); log: $$log"; \
	        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*invariant failed|.*runtime error)' $$log | head -5 | sed 's/^/   /' | \
	            grep . || tail -3 $$log | sed 's/^/   /'; \
	        for a in $$(grep -Eo 'Test unit written to [^ ]+' $$log | cut -d' ' -f5); do \
	            echo "   input: $$a ($$(wc -c < $$a) bytes): $$(od -An -v -tx1 $$a | tr -d ' \n' | cut -c1-160)"; \
	            echo "   reproduce: $(FUZZ_DIR)/fuzz_$$t $$a"; \
	            echo "   once fixed, keep it: cp $$a tests/fuzz/corpus/$$t/ (make check replays it)"; done; \
	    else clean=$$((clean + 1)); echo "ok   - fuzz_$$t: no crash"; fi; \
	done; echo "fuzz: $$clean targets clean, $$fail crashed"; [ $$fail = 0 ]

$(REPLAY_DIR)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC+SAN  $<")
	$(Q)$(CC) $(REPLAY_CFLAGS) $(FUZZ_INC) -MMD -MP -c $< -o $@
$(REPLAY_DIR)/libsrc.a: $(patsubst %.c,$(REPLAY_DIR)/obj/%.o,$(FUZZ_SRC))
	@rm -f $@; ar rcs $@ $^
$(REPLAY_DIR)/replay_%: $(REPLAY_DIR)/obj/tests/fuzz/fuzz_%.o $(REPLAY_DIR)/obj/tests/fuzz/replay.o \
                        $(REPLAY_DIR)/libsrc.a $(B)/obj/gen/web_assets.o \
                        $(B)/obj/gen/daemon/remotewrite.pb-c.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

# One process per file, so a failure names its input and the rest still run.
fuzz-corpus: $(REPLAY_BINS)
	@pass=0; fail=0; log=$(REPLAY_DIR)/last.log; for t in $(FUZZ_TARGETS); do \
	    for f in tests/fuzz/corpus/$$t/*; do \
	        if $(REPLAY_ENV) $(REPLAY_DIR)/replay_$$t $$f > $$log 2>&1; then pass=$$((pass + 1)); \
	        else fail=$$((fail + 1)); echo "FAIL - fuzz_$$t $$f"; sed 's/^/   /' $$log | head -30; fi; \
	    done; echo "ok   - fuzz_$$t: $$(ls tests/fuzz/corpus/$$t | wc -l) corpus files replayed"; \
	done; echo "fuzz-corpus: $$pass passed, $$fail failed"; [ $$fail = 0 ]

-include $(shell find $(FUZZ_DIR)/obj $(REPLAY_DIR)/obj -name '*.d' 2>/dev/null)

# the remote-write encoder includes the generated WriteRequest code
$(FUZZ_DIR)/obj/daemon/rwencode.o $(REPLAY_DIR)/obj/daemon/rwencode.o: $(B)/gen/daemon/remotewrite.pb-c.h
