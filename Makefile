# m2mguard — top-level wrapper around CMake/CTest.
#   make          build (gcc, build/gcc)
#   make check    install missing Debian packages, build, run the whole suite,
#                 again under ASan+UBSan (clang), the fuzzers briefly, the
#                 constant-time check, the Cortex-M0+ build and the linters
#   make demo     build and run the demonstration (the main job)
#   make fuzz     run every fuzzer longer (FUZZ_SECONDS, default 300 each)
#   make bench    run the benchmarks (not part of check)
#   make redteam  every red-team attack against the running system (docs/redteam.md)
#   make lint     cppcheck + clang-tidy over the sources (also part of check)
#   make deb      Debian packages into build/deb (docs/packaging.md)
JOBS ?= 2
FUZZ_SECONDS ?= 300
CHECK_FUZZ_SECONDS ?= 10
# tests wait on daemons more than they compute: three at a time on two cores
CTEST_JOBS ?= 3
BUILD := build
GCC_DIR := $(BUILD)/gcc
ASAN_DIR := $(BUILD)/asan
FUZZ_DIR := $(BUILD)/fuzz
CTEST := ctest --output-on-failure -j$(CTEST_JOBS)

.PHONY: all deps build check test asan fuzz-build fuzz check-fuzz arm demo bench lint clean redteam deb

all: build

deps:
	@tools/install-deps.sh
	@tools/install-npm-deps.sh

$(GCC_DIR)/CMakeCache.txt:
	cmake -S . -B $(GCC_DIR) -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(GCC_DIR)/CMakeCache.txt
	cmake --build $(GCC_DIR) -j$(JOBS)

test: build
	$(CTEST) --test-dir $(GCC_DIR)

asan:
	cmake -S . -B $(ASAN_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMG_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CTEST) --test-dir $(ASAN_DIR) -LE 'novalgrind-asan|asan-skip'

fuzz-build:
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_FUZZ=ON -DMG_TESTS=OFF
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target mg_fuzzers

check-fuzz: fuzz-build
	tools/run-fuzzers.sh $(FUZZ_DIR) $(CHECK_FUZZ_SECONDS)

fuzz: fuzz-build
	tools/run-fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

arm:
	tools/arm-size.sh

check: deps
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory test && \
	$(MAKE) --no-print-directory asan && \
	$(MAKE) --no-print-directory -j3 --output-sync=target check-fuzz arm lint && \
	echo "check: all stages passed in $$(( $$(date +%s) - start )) s"

demo: deps build
	tools/demo.sh $(GCC_DIR)/m2mguard

bench: deps build
	@for b in $(GCC_DIR)/bench/bench_*; do [ -x "$$b" ] && echo "== $$b" && "$$b"; done
	@echo "== bench/e2e_smpp.sh" && bench/e2e_smpp.sh $(GCC_DIR)/m2mguard
	@echo "== bench/bench_flood.sh" && bench/bench_flood.sh $(GCC_DIR)/m2mguard
	@echo "== bench/bench_update_push.sh" && bash bench/bench_update_push.sh $(GCC_DIR)/m2mguard
	@echo "== bench/bench_fleet.sh" && bench/bench_fleet.sh $(GCC_DIR)/m2mguard

soak: deps build ; bash tests/scale/failover.sh $(GCC_DIR)/m2mguard sqlite long && bash tests/scale/failover.sh $(GCC_DIR)/m2mguard pg long
redteam: deps build
	MG_REDTEAM_OUT=$(BUILD)/redteam.txt bash tests/redteam/redteam.sh $(GCC_DIR)/m2mguard $(GCC_DIR)/m2mguard_mosquitto.so

lint: build
	cppcheck --std=c11 --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
	  -q -Iinclude -Isrc/core -Isrc/cli -Isrc/gateway -Isrc/agent -Isrc/text -Isrc/device -Isrc/smpp \
	  -Isrc/ca -Isrc/est -Isrc/mosquitto -Isrc/keyref src
	test -s $(GCC_DIR)/compile_commands.json
	run-clang-tidy -quiet -p $(GCC_DIR) 'src/.*\.c$$' > $(BUILD)/clang-tidy.log 2>&1 || true
	@grep -q "clang-tidy" $(BUILD)/clang-tidy.log || { echo "lint: clang-tidy did not run"; exit 1; }
	@if grep -E "warning:|error:" $(BUILD)/clang-tidy.log; then \
	  echo "lint: clang-tidy findings (see .clang-tidy for the justified exclusions)"; exit 1; \
	else echo "lint: cppcheck and clang-tidy: no findings"; fi

# Debian packages, built from a copy of the tree (dpkg-buildpackage writes ../*.deb)
deb:
	tests/pkg/build-deb.sh $(BUILD)/deb $(JOBS)

clean:
	rm -rf $(BUILD)
