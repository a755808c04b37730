# softgso: the two Quickstart commands are `make demo` and `make test`; each sets everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLE := samples/mpls_tcp_super.pcap

.PHONY: all setup sysdeps demo test lint typecheck unit fuzz fuzz-long kernel-diff kernel-diff-tunnels kernel-diff-gro kernel-diff-captures bench clean

all: test

# the product alone (what `make demo` needs); the test command adds the test tools on top
BASE_STAMP := $(VENV)/.installed-base

$(BASE_STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# setuptools 77+ as pyproject's build requires: `make sysdeps` builds the C modules in place with it
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install --quiet -e .
	@# bytecode up front: an editable install compiles nothing, and with PYTHONDONTWRITEBYTECODE set
	@# every run would recompile softgso's modules (a third of `softgso segment`'s start-up)
	$(PY) -m compileall -q src >/dev/null
	@touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m compileall -q src >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

# System tools the tests use, installed here (root, apt-get), never assumed: tshark, the independent
# decoder; tcprewrite (Debian's tcpreplay), the bench's peer; a C compiler, for softgso's optional C
# modules (without one the compiled engine's tests skip), which are then built in place. Without root
# each missing tool is named, and the tests that need it skip saying so. QEMU and the kernel images are
# the kernel-in-the-loop tests' own set-up (tools/kernel_oracle/install.py).
SYSDEPS := tshark:tshark tcprewrite:tcpreplay cc:gcc

sysdeps:
	@missing=""; for tool in $(SYSDEPS); do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "sysdeps: apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null; \
	else echo "sysdeps: missing$$missing (needs root and apt-get): the tests that use them will skip"; fi
	@if [ -x $(PY) ] && command -v cc >/dev/null 2>&1 && ! $(PY) -c "import softgso.bulk._segment, softgso.bulk._records" 2>/dev/null; then \
	  echo "sysdeps: building softgso's C modules"; $(PY) setup.py build_ext --inplace -q >/dev/null; \
	fi

# The main job on the bundled sample: MPLS-labelled TCP super-packets (partial checksums, as a
# sending host captures them) mixed with ordinary traffic, segmented as a NIC without MPLS GSO would.
demo: $(BASE_STAMP)
	@mkdir -p out
	$(VENV)/bin/softgso segment $(SAMPLE) out/demo_segmented.pcap --device nic-tso-no-mpls-gso
	$(VENV)/bin/softgso inspect out/demo_segmented.pcap

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) sysdeps
	$(PY) -m pytest -q

test: lint typecheck unit

# The fuzz pass (tests/fuzz, hypothesis): SOFTGSO_FUZZ_EXAMPLES examples per target (the plain
# `pytest` run uses a small default). `make fuzz` is bounded for CI; `make fuzz-long` digs deep.
# Coverage-guided fuzzing: `$(PY) tests/fuzz/atheris_main.py TARGET -max_total_time=60` (see SECURITY.md).
FUZZ_EXAMPLES ?= 1000

fuzz: $(STAMP)
	SOFTGSO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/fuzz -m 'not slow' -p no:cacheprovider

fuzz-long: $(STAMP)
	SOFTGSO_FUZZ_EXAMPLES=200000 $(PY) -m pytest -q tests/fuzz -m '' -p no:cacheprovider

bench: $(STAMP)
	$(VENV)/bin/softgso bench

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

# Kernel in the loop (root): boot Debian's KERNEL (6.1 or 6.12) in QEMU once, run N random cases of
# SEED, compare softgso with the kernel case by case; each disagreement is minimised and saved under
# tests/vectors/kernel/generated/ (6.1) or tests/vectors/kernel/6.12/generated/ (exit status 1).
# See tools/kernel_oracle/README.md. Then TUNNEL_N random tunnel cases of SEED (a second boot; 0 skips
# them), as kernel-diff-tunnels runs them.
N ?= 100
SEED ?= 1
KERNEL ?= 6.1
TUNNEL_N ?= 24
kernel-diff: $(STAMP)
	$(PY) -m tools.kernel_oracle diff --count $(N) --seed $(SEED) --kernel $(KERNEL)
	if [ "$(TUNNEL_N)" != 0 ]; then \
		$(PY) -m tools.kernel_oracle.tunnel_cases --diff --random $(TUNNEL_N) --seed $(SEED) --kernel $(KERNEL); fi

# Tunnel GSO in the loop (root): N random tunnel cases of SEED (vxlan, VXLAN-GPE, geneve, gre/gretap,
# ip6gre, ipip, sit, ip6tnl devices and FOU/GUE over veth, inner TCP, tc BPF MPLS-in-UDP/GRE)
# recorded on KERNEL and compared with softgso.
kernel-diff-tunnels: $(STAMP)
	$(PY) -m tools.kernel_oracle.tunnel_cases --diff --random $(N) --seed $(SEED) --kernel $(KERNEL)

# GRO in the loop (root): N random receive-path cases of SEED (interleaved TCP flows, IPv4/IPv6, tags,
# changes where the flush rules look) injected into a veth with GRO on under KERNEL, compared with softgso;
# with CAPTURES="a.pcap b.pcapng ...", the frames of those captures instead (MAX_FRAMES of each).
MAX_FRAMES ?= 1024
kernel-diff-gro: $(STAMP)
	$(PY) -m tools.kernel_oracle.gro_cases --diff --kernel $(KERNEL) \
	  $(if $(CAPTURES),--captures $(CAPTURES) --max-frames $(MAX_FRAMES),--random $(N) --seed $(SEED))

# Segment in the loop on real captures (root): every TCP packet over the MTU of CAPTURES (and as many short
# frames holding a checksum seed; PER_CAPTURE of each per capture) injected as its sender's stack hands it
# to a device without offloads, under KERNEL, compared with `softgso segment --device no-offload`.
# DEVICE=csum or tso: veth0 with checksum offload (segments leave with their seeds) or TSO (whole).
PER_CAPTURE ?= 16
# PUSH_MPLS=1..3: that many labels pushed on every packet (tc act_mpls / softgso --action push-mpls).
# UDP_GSO=1 (KERNEL=6.12): UDP datagrams too, as USO (virtio UDP_L4 / softgso --udp-gso udp_l4).
DEVICE ?= no-offload
PUSH_MPLS ?= 0
kernel-diff-captures: $(STAMP)
	$(PY) -m tools.kernel_oracle.capture_gso --kernel $(KERNEL) --per-capture $(PER_CAPTURE) --device $(DEVICE) \
	  --push-mpls $(PUSH_MPLS) $(if $(UDP_GSO),--udp-gso) \
	  --captures $(or $(CAPTURES),$(sort $(wildcard ../shared/captures/*/*.pcap*)))
