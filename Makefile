# Beacon: two commands on a fresh Debian 12 machine.
#
#   make run    install missing packages, build, start `beacon serve`
#   make test   install missing packages, build, run every test (ctest)
#
# BUILD_DIR, BUILD_TYPE and JOBS can be overridden on the command line;
# ARGS is appended to `beacon serve` (flags or BEACON_* variables both work).

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
ARGS ?=

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

run: build
	mkdir -p data
	exec ./$(BUILD_DIR)/beacon serve $(ARGS)

test: deps-test build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# Removes the build only; data/ holds real keys and opens and is kept.
clean:
	rm -rf $(BUILD_DIR)
