"""Boot the kernel under QEMU once and hand it batches of cases through a shared folder.

The guest sees the host's root file system read-only over 9p (it chroots into it, so the host's
python3, ip, tc and ethtool run in the VM) and a temporary read-write 9p folder holding the guest
code, the requests and the results. :class:`KernelVM` is a context manager: boot on enter, ask the
guest to power off on exit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from .initramfs import build_initramfs
from .install import DEFAULT_GENERATION, GENERATIONS, installed_version

PACKAGE_DIR = Path(__file__).parent
GUEST_FILES = ("__init__.py", "wire.py", "guest.py")
BOOT_TIMEOUT_SECONDS = 180
# the guest needs ~1-3 s per case under TCG; a batch gets this much per case on top of a fixed margin
BATCH_SECONDS_PER_CASE = 20


class OracleError(RuntimeError):
    """The VM could not be started or stopped answering."""


def installed_kernels() -> list[str]:
    """Kernel releases with both /boot/vmlinuz-<release> and /lib/modules/<release>, oldest first."""
    releases = [p.name[len("vmlinuz-"):] for p in Path("/boot").glob("vmlinuz-*")]
    releases = [r for r in releases if Path("/lib/modules", r).is_dir()]

    def version_key(release: str) -> list[object]:
        return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.-]", release)]
    return sorted(releases, key=version_key)


def pick_kernel(requested: str | None = None) -> str:
    """The kernel release to boot: ``requested`` names a generation (``6.1``, ``6.12``) or a release.

    A generation picks its pinned release when installed, else the newest installed release of that
    generation; no request means the default generation (6.1). A release is taken as given.
    """
    kernels = installed_kernels()
    if not kernels:
        raise OracleError("no /boot/vmlinuz-* with /lib/modules: run `python -m tools.kernel_oracle setup` as root")
    generation = requested or DEFAULT_GENERATION
    if generation in GENERATIONS:
        pin = GENERATIONS[generation]
        if pin.release in kernels:
            return pin.release
        same = [k for k in kernels if pin.matches_release(k)]
        if not same:
            raise OracleError(f"no {generation} kernel is installed (have: {kernels}): run setup as root")
        return same[-1]
    if requested not in kernels:
        raise OracleError(f"kernel {requested} is not installed (have: {kernels})")
    return str(requested)


def package_of(release: str) -> tuple[str, str | None]:
    """The Debian package that ships a kernel release, and its installed version."""
    package = f"linux-image-{release}"
    return package, installed_version(package)


def kvm_usable() -> bool:
    """KVM only when /dev/kvm opens and the CPU advertises virtualisation (nested KVM hangs otherwise)."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(vmx|svm)\b", flags))


class KernelVM:
    """One booted guest kernel that runs batches of cases."""

    # the guest program and the files it needs (tunnel_cases.py boots its own: tunnel_guest)
    guest_module = "kernel_oracle.guest"
    guest_files: tuple[str, ...] = GUEST_FILES

    def __init__(self, kernel: str | None = None, accel: str = "auto", console_log: Path | None = None,
                 memory_mb: int = 1024) -> None:
        self.kernel_release = pick_kernel(kernel)
        self.accel = ("kvm" if kvm_usable() else "tcg") if accel == "auto" else accel
        self.memory_mb = memory_mb
        self.console_log = console_log
        self.share = Path(tempfile.mkdtemp(prefix="softgso-kernel-oracle."))
        self.process: subprocess.Popen[bytes] | None = None
        self.next_request = 0
        self.kernel = ""                # `uname -r` and `uname -v` of the guest, as meta.json records it
        self.kernel_release_guest = ""
        self.kernel_package, self.kernel_package_version = package_of(self.kernel_release)
        self.boot_seconds = 0.0
        self._log: BinaryIO | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> KernelVM:
        self.boot()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def qemu_command(self, initrd: Path) -> list[str]:
        """The QEMU command line: serial console only, no NIC, two 9p shares."""
        accel = ["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm" else ["-accel", "tcg", "-cpu", "max"]
        return ["qemu-system-x86_64", *accel, "-m", str(self.memory_mb), "-smp", "1", "-nic", "none",
                "-nographic", "-no-reboot", "-kernel", f"/boot/vmlinuz-{self.kernel_release}", "-initrd", str(initrd),
                "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
                "-virtfs", f"local,path={self.share},mount_tag=job,security_model=none",
                "-append", "console=ttyS0 loglevel=4 panic=-1"]

    def boot(self) -> None:
        """Start QEMU and wait until the guest reports ready."""
        if shutil.which("qemu-system-x86_64") is None:
            raise OracleError("qemu-system-x86_64 not found: run `python -m tools.kernel_oracle setup` as root")
        if not os.access(f"/boot/vmlinuz-{self.kernel_release}", os.R_OK):
            raise OracleError(f"/boot/vmlinuz-{self.kernel_release} is not readable (run as root)")
        initrd = build_initramfs(self.kernel_release)
        code = self.share / "kernel_oracle"
        code.mkdir()
        for name in self.guest_files:
            shutil.copyfile(PACKAGE_DIR / name, code / name)
        (self.share / "requests").mkdir()
        (self.share / "out").mkdir()
        # the host's own interpreter, resolved: it is on the shared root file system, so it runs in the chroot
        python = os.path.realpath(shutil.which("python3", path="/usr/bin:/bin") or sys.executable)
        (self.share / "job.sh").write_text(
            "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1\n"
            f"cd /run/kernel-oracle && exec {python} -m {self.guest_module} /run/kernel-oracle\n")
        if self.console_log:
            self.console_log.parent.mkdir(parents=True, exist_ok=True)
        log = self._log = open(self.console_log or os.devnull, "wb")  # noqa: SIM115 (closed in close())
        started = time.monotonic()
        self.process = subprocess.Popen(self.qemu_command(initrd), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
        ready = self.share / "ready.json"
        while not ready.exists():
            self._check_alive("booting")
            if time.monotonic() - started > BOOT_TIMEOUT_SECONDS:
                self.close()
                raise OracleError(f"the guest did not come up within {BOOT_TIMEOUT_SECONDS} s (see the console log)")
            time.sleep(0.1)
        self.boot_seconds = time.monotonic() - started
        info = json.loads(ready.read_text())
        self.kernel, self.kernel_release_guest = info["kernel"], info["kernel_release"]

    def close(self) -> None:
        """Ask the guest to power off (kill QEMU if it does not), remove the shared folder."""
        if self.process is not None and self.process.poll() is None:
            self._write_request({"quit": True})
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.share, ignore_errors=True)

    # -- batches -------------------------------------------------------------------------------
    def run_batch(self, cases: list[dict], out_dir: Path) -> list[dict]:
        """Run ``cases`` (guest form, see cases.py) in the guest; their folders land in ``out_dir``."""
        number = self.next_request
        batch_name = f"batch{number}"
        self._write_request({"out": batch_name, "cases": cases})
        response = self.share / "responses" / f"{number}.json"
        deadline = time.monotonic() + 60 + BATCH_SECONDS_PER_CASE * len(cases)
        while not response.exists():
            self._check_alive("running a batch")
            if time.monotonic() > deadline:
                raise OracleError(f"batch {number} ({len(cases)} cases) timed out")
            time.sleep(0.05)
        summaries: list[dict] = json.loads(response.read_text())
        results = self.share / "out" / batch_name
        out_dir.mkdir(parents=True, exist_ok=True)
        for summary in summaries:
            source, target = results / summary["name"], out_dir / summary["name"]
            if source.is_dir():
                self._stamp_package(source / "meta.json")
                shutil.rmtree(target, ignore_errors=True)
                shutil.move(str(source), str(target))
        shutil.rmtree(results, ignore_errors=True)
        return summaries

    def _stamp_package(self, meta_path: Path) -> None:
        """Add the exact Debian package and version of the booted kernel to a case's meta.json."""
        if not meta_path.exists():
            return
        meta = json.loads(meta_path.read_text())
        meta["kernel_package"] = self.kernel_package
        meta["kernel_package_version"] = self.kernel_package_version
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")

    def _write_request(self, request: dict) -> None:
        """Publish the next request atomically (the guest polls for it by number)."""
        path = self.share / "requests" / f"{self.next_request}.json"
        path.with_suffix(".tmp").write_text(json.dumps(request))
        path.with_suffix(".tmp").replace(path)
        self.next_request += 1

    def _check_alive(self, doing: str) -> None:
        if self.process is None or self.process.poll() is not None:
            raise OracleError(f"QEMU exited while {doing} (see the console log)")
