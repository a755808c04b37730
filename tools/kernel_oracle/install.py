"""Install what the oracle needs with apt-get: QEMU, a pinned 6.1 kernel, busybox-static, the net tools.

The kernel is pinned to an exact ``linux-image-6.1.0-N-amd64`` package so that results do not move
when ``linux-image-amd64`` does (it is 6.1 on Debian 12 bookworm, newer elsewhere). The default pin is
the kernel the golden set was recorded with; if the archive no longer offers it, the newest 6.1.0
image it offers is used instead.
"""

from __future__ import annotations

import os
import re
import subprocess

PINNED_KERNEL_PACKAGE = "linux-image-6.1.0-56-amd64"  # Debian 6.1.192-2, the golden set's kernel
TOOL_PACKAGES = ("qemu-system-x86", "busybox-static", "ethtool", "iproute2", "kmod")
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


class InstallError(RuntimeError):
    """The packages could not be installed (not root, no network to the archive, unknown package)."""


def is_installed(package: str) -> bool:
    """Whether dpkg has the package fully installed."""
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.endswith("install ok installed")


def has_candidate(package: str) -> bool:
    """Whether apt can install the package (after ``apt-get update``)."""
    done = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True)
    match = re.search(r"Candidate:\s*(\S+)", done.stdout)
    return match is not None and match.group(1) != "(none)"


def newest_61_kernel_package() -> str | None:
    """The newest ``linux-image-6.1.0-N-amd64`` the archive offers."""
    done = subprocess.run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"],
                          capture_output=True, text=True)
    names = re.findall(r"^(linux-image-6\.1\.0-(\d+)-amd64) ", done.stdout, flags=re.MULTILINE)
    return max(names, key=lambda name: int(name[1]))[0] if names else None


def kernel_release_of(package: str) -> str:
    """``linux-image-6.1.0-56-amd64`` -> ``6.1.0-56-amd64``."""
    return package[len("linux-image-"):]


def install(kernel_package: str = PINNED_KERNEL_PACKAGE) -> str:
    """Install the tools and the pinned kernel (skipping apt when all are present); returns the release."""
    wanted = [*TOOL_PACKAGES, kernel_package]
    if all(is_installed(p) for p in wanted):
        return kernel_release_of(kernel_package)
    if os.geteuid() != 0:
        raise InstallError("installing packages needs root: " + " ".join(p for p in wanted if not is_installed(p)))
    update = subprocess.run(["apt-get", "update"], env=APT_ENV, capture_output=True, text=True)
    if update.returncode or "Err:" in update.stdout:
        raise InstallError("apt-get update failed (no network to the Debian archive?):\n" + update.stdout[-2000:]
                           + update.stderr[-2000:])
    if not has_candidate(kernel_package):
        fallback = newest_61_kernel_package()
        if fallback is None:
            raise InstallError(f"{kernel_package} is not in the archive and no linux-image-6.1.0-*-amd64 is")
        kernel_package = fallback
        wanted[-1] = kernel_package
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *wanted], env=APT_ENV,
                          capture_output=True, text=True)
    if done.returncode:
        raise InstallError("apt-get install failed:\n" + done.stdout[-2000:] + done.stderr[-2000:])
    return kernel_release_of(kernel_package)
