# Beacon: two commands on a fresh Debian 12 machine.
#
#   make run    install missing packages, build, start `beacon serve`
#               (a new database gets a demo month first; DEMO=0: empty)
#   make test   install missing packages, build, run every test (ctest),
#               then again under ASan and UBSan, then the fuzz targets
#               over their corpora (plus BCN_FUZZ_SECONDS of new inputs)
#   make fuzz   fuzz each target for FUZZ_SECONDS (default 60)
#
# BUILD_DIR, ASAN_DIR, FUZZ_DIR, BUILD_TYPE and JOBS can be overridden on
# the command line;
# ARGS is appended to `beacon serve` (flags or BEACON_* variables both work).
# DB is the database make run serves (and fills with `beacon demo` when it
# does not exist yet, unless DEMO=0).

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
ARGS ?=
DEMO ?= 1
DB ?= $(or $(BEACON_DB),data/beacon.db)
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,%,\
    $(wildcard tests/fuzz/fuzz_*.c))

# cmake --build runs make again; its "Entering directory" lines are noise.
MAKEFLAGS += --no-print-directory

.PHONY: all deps deps-test build build-asan build-fuzz run test fuzz clean

all: build

# What building and serving need; the tests also need a browser, wrk and
# nginx, and the fuzz build clang.
deps:
	tools/deps.sh run

deps-test:
	tools/deps.sh test

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# The same code and tests with AddressSanitizer and UBSan; the tests set
# ASAN_OPTIONS and UBSAN_OPTIONS themselves (tests/CMakeLists.txt).
build-asan: deps-test
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DBCN_SANITIZERS=ON
	cmake --build $(ASAN_DIR) -j$(JOBS)

# The libFuzzer targets of tests/fuzz/ (clang, ASan, UBSan).
build-fuzz: deps-test
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DCMAKE_C_COMPILER=$(FUZZ_CC) -DBCN_FUZZ=ON
	cmake --build $(FUZZ_DIR) -j$(JOBS)

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

test: deps-test build build-asan build-fuzz
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)
	ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS)
	ctest --test-dir $(FUZZ_DIR) --output-on-failure -j$(JOBS)

# Each target in turn, FUZZ_SECONDS each.  What it finds interesting
# goes to $(FUZZ_DIR)/tests/fuzz/new/<target>/ (the seeds in
# tests/fuzz/corpus/ stay as they are); a crash stops here and leaves its
# input as $(FUZZ_DIR)/tests/fuzz/crash-<target>-*.
fuzz: build-fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	    echo "make fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    mkdir -p $(FUZZ_DIR)/tests/fuzz/new/$$t; \
	    ./$(FUZZ_DIR)/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/tests/fuzz/crash-$$t- \
	        $(FUZZ_DIR)/tests/fuzz/new/$$t tests/fuzz/corpus/$$t; \
	done

# Removes the builds only; data/ holds real keys and opens and is kept.
clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
