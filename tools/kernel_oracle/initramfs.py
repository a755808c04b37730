"""The guest's initramfs: a static busybox, the kernel modules the oracle needs, and ``/init``.

The archive is written in Python (cpio "newc" + gzip), so the only host tools needed are busybox-static
and kmod (``modprobe --show-depends`` resolves module dependencies for the chosen kernel). It is cached
per kernel release; delete the cache folder to rebuild.
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import subprocess
from pathlib import Path

# veth + tc (clsact/matchall/act_mpls/act_vlan) + 802.1Q devices + the 9p shares; MPLS GSO is built in
MODULES = ("9p", "9pnet_virtio", "virtio_pci", "veth", "act_mpls", "act_vlan", "cls_matchall", "sch_ingress", "8021q")
APPLETS = ("sh", "mount", "insmod", "mkdir", "echo", "sleep", "chroot", "sync", "poweroff", "umount")
INIT_SCRIPT = Path(__file__).with_name("init.sh")


class InitramfsError(RuntimeError):
    """The initramfs cannot be built on this host (missing package, unknown kernel)."""


def cache_dir() -> Path:
    """Where initramfs images are cached (``SOFTGSO_KERNEL_ORACLE_CACHE`` overrides)."""
    override = os.environ.get("SOFTGSO_KERNEL_ORACLE_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "softgso" / "kernel-oracle"


def initramfs_path(kernel_release: str) -> Path:
    """The cached image for a kernel release."""
    return cache_dir() / f"initramfs-{kernel_release}.cpio.gz"


def module_load_order(kernel_release: str) -> list[Path]:
    """Every module file to insmod, dependencies first, each once."""
    order: list[Path] = []
    for module in MODULES:
        done = subprocess.run(["modprobe", "-S", kernel_release, "--show-depends", module],
                              capture_output=True, text=True)
        if done.returncode:
            raise InitramfsError(f"modprobe --show-depends {module} ({kernel_release}): {done.stderr.strip()}")
        for line in done.stdout.splitlines():
            words = line.split()
            if words[:1] == ["insmod"] and Path(words[1]) not in order:
                order.append(Path(words[1]))
    return order


def module_bytes(path: Path) -> bytes:
    """A module file, decompressed (insmod in busybox wants plain .ko)."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    return data


class CpioWriter:
    """A minimal cpio "newc" archive writer (what the kernel's initramfs unpacker reads)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.inode = 1

    def add(self, name: str, mode: int, data: bytes = b"") -> None:
        """Add a file, directory or symlink (``data`` = target) with permission/type bits ``mode``."""
        fields = (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        entry = header + name.encode() + b"\0"
        entry += b"\0" * (-len(entry) % 4) + data
        self.chunks.append(entry + b"\0" * (-len(entry) % 4))
        self.inode += 1

    def finish(self) -> bytes:
        """The archive with its trailer."""
        self.add("TRAILER!!!", 0)
        return b"".join(self.chunks)


def build_initramfs(kernel_release: str, force: bool = False) -> Path:
    """Build (or reuse) the cached initramfs for ``kernel_release``; returns its path."""
    target = initramfs_path(kernel_release)
    if target.exists() and not force:
        return target
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists():
        raise InitramfsError("busybox not found: install busybox-static (setup does)")
    linkage = subprocess.run(["ldd", str(busybox)], capture_output=True, text=True)
    if "not a dynamic executable" not in linkage.stdout + linkage.stderr:
        raise InitramfsError(f"{busybox} is dynamically linked: install busybox-static")
    archive = CpioWriter()
    for folder in ("bin", "proc", "sys", "dev", "host", "mods"):
        archive.add(folder, 0o040755)
    archive.add("bin/busybox", 0o100755, busybox.read_bytes())
    for applet in APPLETS:
        archive.add(f"bin/{applet}", 0o120777, b"busybox")
    names = []
    for module in module_load_order(kernel_release):
        name = module.name.split(".ko")[0] + ".ko"
        archive.add(f"mods/{name}", 0o100644, module_bytes(module))
        names.append(name)
    archive.add("mods/order", 0o100644, ("\n".join(names) + "\n").encode())
    archive.add("init", 0o100755, INIT_SCRIPT.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    partial.write_bytes(gzip.compress(archive.finish(), compresslevel=1))
    partial.replace(target)
    return target
