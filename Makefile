# Entry points: `make run` (set up, build, run the demo kernel's tests) and `make check` (every test).
BUILD ?= build
ASAN_BUILD ?= build-asan
SMP ?= 4

.PHONY: all setup build run check bench clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja:
	@meson setup $(BUILD) >/dev/null

build: setup $(BUILD)/build.ninja
	@ninja -C $(BUILD) --quiet

# Runs the demo kernel's tests through `kscope run` (exit status 0 when all passed); each VM's
# console log goes to $(BUILD)/kscope-logs.
run: build
	@$(BUILD)/cli/kscope run --cpus $(SMP) --log-dir $(BUILD)/kscope-logs

# Every test: the normal build (unit + VM tests), then the unit tests under ASan and UBSan.
check: build
	@scripts/check.sh $(BUILD) $(ASAN_BUILD)

# Figures recorded in BENCHMARKS.md, each next to its baseline.
bench: build
	@$(BUILD)/bench/bench_boot $(BUILD)/kernel/kscope-demo.elf $(BUILD)/kernel/kscope-floor.elf 11 4
	@$(BUILD)/bench/bench_vm $(BUILD)/kernel/kscope-demo.elf 11 $(BUILD)/cli/kscope
	@$(BUILD)/bench/bench_mem $(BUILD)/kernel/kscope-demo.elf 11 $(BUILD)/cli/kscope
	@$(BUILD)/bench/bench_events $(BUILD)/kernel/kscope-demo.elf 9
	@$(BUILD)/bench/bench_run $(BUILD)/cli/kscope $(BUILD)/kernel/kscope-demo.elf $(BUILD)/bench/kscope-bench.elf 11
	@node bench/bench_dashboard.mjs $(BUILD)/cli/kscope $(BUILD)/kernel/kscope-demo.elf 11

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
