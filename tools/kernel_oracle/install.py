"""Install what the oracle needs with apt-get: QEMU, the pinned kernels, busybox-static, the net tools.

Two kernel generations, each pinned to an exact Debian package so that results do not move when
``linux-image-amd64`` does: 6.1 (``linux-image-6.1.0-N-amd64``, the golden set's kernel) and 6.12
(``linux-image-6.12.N+deb12-amd64``, which Debian 12's configured sources carry beside 6.1). If the
archive no longer offers a pinned package, the newest image of the same generation it offers is
installed instead, with a warning; every vector records the release and package version that ran.
No apt source is ever added: the packages come from the machine's own Debian entries.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

TOOL_PACKAGES = ("qemu-system-x86", "busybox-static", "ethtool", "iproute2", "kmod")
# the tunnel cases' tc BPF programs (MPLS in UDP/GRE) are compiled on the host: clang -target bpf
BPF_PACKAGES = ("clang", "llvm", "libbpf-dev")
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


@dataclass(frozen=True)
class KernelPin:
    """One kernel generation: the exact package pinned, and the pattern of its fallbacks."""

    generation: str
    package: str
    fallback_pattern: str  # a regular expression over package names; group 1 orders them (newest = largest)

    @property
    def release(self) -> str:
        """``uname -r`` of the pinned package."""
        return kernel_release_of(self.package)

    def matches_release(self, release: str) -> bool:
        """Whether a kernel release belongs to this generation's package family."""
        return re.fullmatch(self.fallback_pattern, "linux-image-" + release) is not None


GENERATIONS: dict[str, KernelPin] = {
    # Debian 6.1.192-2, the golden set's kernel
    "6.1": KernelPin("6.1", "linux-image-6.1.0-56-amd64", r"linux-image-6\.1\.0-(\d+)-amd64"),
    # Debian 6.12.118-1~deb12u1, the newest 6.12 LTS image in bookworm's own sources on 2026-12-06
    "6.12": KernelPin("6.12", "linux-image-6.12.118+deb12-amd64", r"linux-image-6\.12\.(\d+)\+deb12-amd64"),
}
DEFAULT_GENERATION = "6.1"
PINNED_KERNEL_PACKAGE = GENERATIONS[DEFAULT_GENERATION].package


class InstallError(RuntimeError):
    """The packages could not be installed (not root, no network to the archive, unknown package)."""


def is_installed(package: str) -> bool:
    """Whether dpkg has the package fully installed."""
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.endswith("install ok installed")


def installed_version(package: str) -> str | None:
    """The Debian version dpkg has installed for ``package`` (``6.12.118-1~deb12u1``), or None."""
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Status}|${Version}", package], capture_output=True, text=True)
    status, _, version = done.stdout.partition("|")
    return version if done.returncode == 0 and status.endswith("install ok installed") and version else None


def has_candidate(package: str) -> bool:
    """Whether apt can install the package (after ``apt-get update``)."""
    done = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True)
    match = re.search(r"Candidate:\s*(\S+)", done.stdout)
    return match is not None and match.group(1) != "(none)"


def newest_offered(pin: KernelPin) -> str | None:
    """The newest package of the pin's generation that the archive offers."""
    done = subprocess.run(["apt-cache", "search", "--names-only", "^" + pin.fallback_pattern + "$"],
                          capture_output=True, text=True)
    names = [(line.split()[0], re.fullmatch(pin.fallback_pattern, line.split()[0]))
             for line in done.stdout.splitlines() if line.split()]
    offered = [(name, int(match.group(1))) for name, match in names if match]
    return max(offered, key=lambda item: item[1])[0] if offered else None


def kernel_release_of(package: str) -> str:
    """``linux-image-6.12.118+deb12-amd64`` -> ``6.12.118+deb12-amd64``."""
    return package[len("linux-image-"):]


def generation_of_release(release: str) -> str | None:
    """The generation (``6.1``, ``6.12``) of a kernel release, or None when no pin covers it."""
    return next((pin.generation for pin in GENERATIONS.values() if pin.matches_release(release)), None)


def apt_update() -> None:
    """apt-get update, or InstallError with apt's words (no network to the Debian archive?)."""
    update = subprocess.run(["apt-get", "update"], env=APT_ENV, capture_output=True, text=True)
    if update.returncode or "Err:" in update.stdout:
        raise InstallError("apt-get update failed (no network to the Debian archive?):\n" + update.stdout[-2000:]
                           + update.stderr[-2000:])


def apt_install(packages: list[str]) -> None:
    """apt-get install PACKAGES without recommends, or InstallError with apt's words."""
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=APT_ENV,
                          capture_output=True, text=True)
    if done.returncode:
        raise InstallError("apt-get install failed:\n" + done.stdout[-2000:] + done.stderr[-2000:])


def install(generations: tuple[str, ...] = tuple(GENERATIONS), packages: dict[str, str] | None = None) -> dict[str, str]:
    """Install the tools and one kernel per generation (apt is skipped when all are present).

    ``packages`` overrides a generation's pinned package. Returns ``{generation: kernel release}``.
    """
    chosen = {gen: (packages or {}).get(gen, GENERATIONS[gen].package) for gen in generations}
    wanted = [*TOOL_PACKAGES, *chosen.values()]
    if all(is_installed(p) for p in wanted):
        return {gen: kernel_release_of(package) for gen, package in chosen.items()}
    if os.geteuid() != 0:
        raise InstallError("installing packages needs root: " + " ".join(p for p in wanted if not is_installed(p)))
    apt_update()
    for gen, package in list(chosen.items()):
        if is_installed(package) or has_candidate(package):
            continue
        fallback = newest_offered(GENERATIONS[gen])
        if fallback is None:
            raise InstallError(f"{package} is not in the archive and no other {gen} image is")
        print(f"kernel-oracle: warning: {package} is no longer offered; installing {fallback} for {gen}"
              " (vectors record the release that ran)", file=sys.stderr, flush=True)
        chosen[gen] = fallback
    wanted = [*TOOL_PACKAGES, *chosen.values()]
    apt_install(wanted)
    return {gen: kernel_release_of(package) for gen, package in chosen.items()}


def install_tools(packages: tuple[str, ...]) -> None:
    """apt-get install PACKAGES unless all are present (root; the Debian archive)."""
    missing = [p for p in packages if not is_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise InstallError("installing packages needs root: " + " ".join(missing))
    apt_update()
    apt_install(missing)
