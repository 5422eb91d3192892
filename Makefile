# Beacon: two commands on a fresh Debian 12 machine.
#
#   make run    install missing packages, build, start `beacon serve`
#               (a new database gets a demo month first; DEMO=0: empty)
#   make test   install missing packages, build, run every test (ctest)
#
# BUILD_DIR, BUILD_TYPE and JOBS can be overridden on the command line;
# ARGS is appended to `beacon serve` (flags or BEACON_* variables both work).
# DB is the database make run serves (and fills with `beacon demo` when it
# does not exist yet, unless DEMO=0).

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
ARGS ?=
DEMO ?= 1
DB ?= $(or $(BEACON_DB),data/beacon.db)

# cmake --build runs make again; its "Entering directory" lines are noise.
MAKEFLAGS += --no-print-directory

.PHONY: all deps deps-test build run test clean

all: build

# What building and serving need; the tests also need a browser, wrk and
# nginx.
deps:
	tools/deps.sh run

deps-test:
	tools/deps.sh test

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# A new database gets the demo month, so the dashboard has something to
# show at once; an existing one is served as it is.
run: build
	mkdir -p data
	@if [ "$(DEMO)" != 0 ] && [ ! -e "$(DB)" ]; then \
	    echo "make run: $(DB) is new, filling it with a demo month" \
	         "(beacon demo); make run DEMO=0 starts empty"; \
	    ./$(BUILD_DIR)/beacon demo --db "$(DB)" > /dev/null || exit 1; \
	fi
	exec ./$(BUILD_DIR)/beacon serve --db "$(DB)" $(ARGS)

test: deps-test build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# Removes the build only; data/ holds real keys and opens and is kept.
clean:
	rm -rf $(BUILD_DIR)
