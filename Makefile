# Makefile for scim_provision (PGXS)
#
#   make            build the extension (needs postgresql-server-dev-15, libcurl)
#   make install    install it into the server found by $(PG_CONFIG)
#   make demo       fresh machine -> packages, build, install, throwaway cluster, demo
#   make test       fresh machine -> packages, build (-Werror), install, every test suite
#   make fuzz       libFuzzer over the pure filter/PATCH cores (bounded time)
#   make bench      benchmarks under bench/ (ratios against baselines, same run)
#   make deb        Debian package postgresql-15-scim-provision (debian/, pg_buildext)
#   make dist       PGXN release zip scim_provision-$(EXTVERSION).zip (git archive of HEAD)
#   make package-check   build, lint and install the package, installcheck it,
#                   build the zip from a temp dir (as root; CI runs it)
#
# "demo" and "test" work before the server headers are installed: they run
# tools/deps.sh first, then call make again, when PGXS can be included.

# Two extensions: scim_provision (every node, a shard) and
# scim_provision_router (the router of a sharded deployment, requires
# plproxy; one hand-written install script, see doc/SCALING.md).
EXTENSION	= scim_provision scim_provision_router
EXTVERSION	= 0.3.0
MODULE_big	= scim_provision
PGFILEDESC	= "scim_provision - SCIM 2.0 service provider"

# One concern per file; every src/*.c is part of the module.
OBJS		= $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from src/sql/NN_*.sql (one concern per
# file, applied in name order).  Upgrade scripts scim_provision--A--B.sql
# are written by hand and never edited once released (see README); the
# install scripts of earlier releases are kept as released, so that the
# upgrade test can create them (scim_provision--0.1.0.sql).
DATA_built	= scim_provision--$(EXTVERSION).sql
DATA		= $(wildcard scim_provision--*--*.sql) scim_provision--0.1.0.sql scim_provision--0.2.0.sql \
			  scim_provision_router--$(EXTVERSION).sql
SQL_SOURCES	= $(sort $(wildcard src/sql/*.sql))

# pg_regress suites: sql/NAME.sql -> expected/NAME.out, run in name order.
REGRESS		= $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=pg_trgm --load-extension=pgtap --load-extension=scim_provision

CURL_CONFIG ?= curl-config
PG_CPPFLAGS	= -Isrc -DEXTVERSION=\"$(EXTVERSION)\" $(shell $(CURL_CONFIG) --cflags 2>/dev/null)
SHLIB_LINK	= $(shell $(CURL_CONFIG) --libs 2>/dev/null)
EXTRA_CLEAN	= $(DATA_built) results regression.diffs regression.out output_iso tmp_check tmp_check_iso log \
		  $(FLAGS_STAMP)

PG_CONFIG	?= pg_config
PGXS		:= $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all:
	@echo "PGXS not found (is postgresql-server-dev-15 installed?); 'make test' and 'make demo' install it" >&2
	@exit 1
endif

scim_provision--$(EXTVERSION).sql: $(SQL_SOURCES) Makefile
	cat $(SQL_SOURCES) > $@

# The objects depend on the flags they were compiled with: when CPPFLAGS or
# CFLAGS (PG_CFLAGS, COPT) differ from the last build's, everything is
# compiled again, so "make test" after "make demo" really builds with -Werror.
# A plain "make install" (or installcheck) installs what was built, with
# whatever flags it was built.
FLAGS_STAMP = .build-flags
ifneq ($(wildcard $(PGXS)),)
BUILD_FLAGS := $(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_SL)
ifneq ($(if $(MAKECMDGOALS),$(filter-out install installcheck uninstall,$(MAKECMDGOALS)),all),)
ifneq ($(BUILD_FLAGS),$(shell cat $(FLAGS_STAMP) 2>/dev/null))
$(shell echo '$(BUILD_FLAGS)' > $(FLAGS_STAMP))
endif
endif
$(OBJS): $(FLAGS_STAMP)
$(FLAGS_STAMP): ;
endif

# Warnings are errors in CI and in 'make test'.
WERROR_FLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

.PHONY: deps demo test fuzz bench deb dist package-check

deps:
	tools/deps.sh

demo: deps
	$(MAKE) PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	$(MAKE) PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install
	tools/demo.sh

test: deps
	$(MAKE) PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config PG_CFLAGS="$(WERROR_FLAGS)"
	$(MAKE) PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config PG_CFLAGS="$(WERROR_FLAGS)" install
	tools/run-tests.sh

fuzz:
	test/fuzz/run.sh $(FUZZ_SECONDS)

bench:
	bench/run.sh

# Packaging (tools/deps.sh --packaging installs the tools).
deb:
	tools/deb.sh

# the distribution is named after the main extension (the first of EXTENSION)
DIST		= $(firstword $(EXTENSION))-$(EXTVERSION)
dist:
	git archive --format zip --prefix=$(DIST)/ -o $(DIST).zip HEAD

package-check:
	tools/package-check.sh
