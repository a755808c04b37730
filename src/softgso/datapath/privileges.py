"""`softgso datapath --user`: the forwarding loop runs unprivileged, in a child of the root process.

Strategy (privilege separation, as OpenSSH's monitor does it): the root process builds the
namespaces and opens the TAPs, then forks. The child drops to the user for good (setgroups([]),
setresgid, setresuid, no_new_privs) and runs the forwarding loop on the descriptors it inherited:
every frame from the namespaces is parsed by that unprivileged process only. The parent stays root
and does nothing but wait, pass SIGINT/SIGTERM/SIGHUP on to the child, and tear down when the child
has ended. Teardown cannot move into the child: removing a named namespace unmounts
/var/run/netns/NAME, which needs CAP_SYS_ADMIN in the initial namespaces, and a forwarder that kept
that capability would not be unprivileged at all.

The child reports one JSON object through a pipe: ``{"result": ...}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from ..errors import SoftGSOError, UsageError

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# after passing a signal on, how long the child has to finish before it is killed
GRACE_SECONDS = 5.0
MAX_ID = 0xFFFFFFFE  # (uid_t)-1 means "unchanged" to setresuid

# what the child's work function is given: the signal that asked it to stop, or None
StopSignal = Callable[[], "int | None"]


class PrivilegeError(SoftGSOError):
    """The forwarder could not drop its privileges, or ended without reporting."""


@dataclass(frozen=True)
class Credentials:
    """Who the forwarder runs as."""

    name: str
    uid: int
    gid: int


def resolve_user(text: str) -> Credentials:
    """``--user NAME`` or ``--user UID`` (group: the user's primary group; for a UID without an entry in
    the password database, the group with the same number). Unknown names and root are usage errors."""
    text = text.strip()
    if text.isdigit():
        uid = int(text)
        if uid > MAX_ID:
            raise UsageError(f"--user {text}: uid out of range")
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            credentials = Credentials(text, uid, uid)
        else:
            credentials = Credentials(entry.pw_name, uid, entry.pw_gid)
    else:
        try:
            entry = pwd.getpwnam(text)
        except KeyError:
            raise UsageError(f"--user {text!r}: no such user on this system (give a user name or a numeric uid)") \
                from None
        credentials = Credentials(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if credentials.uid == 0:
        raise UsageError(f"--user {text}: that is root; name an unprivileged user (e.g. nobody)")
    return credentials


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"prctl({option}): {os.strerror(err)}")


def drop_privileges(credentials: Credentials) -> None:
    """Become ``credentials`` for good: no supplementary groups, real/effective/saved ids all changed,
    no capabilities left (the kernel clears them once no uid is 0), no way to gain any by exec."""
    uid, gid = credentials.uid, credentials.gid
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot switch to user {credentials.name} (uid {uid}, gid {gid}): "
                             f"{exc.strerror}") from exc
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise PrivilegeError(f"switching to user {credentials.name} left other ids in place")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PrivilegeError("privileges were not dropped: setuid(0) still succeeds")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def run_as(credentials: Credentials, work: Callable[[StopSignal], dict[str, Any]], *,
           keep_fds: Iterable[int] = ()) -> dict[str, Any]:
    """Run ``work`` in a child process as ``credentials``; return what it returned (JSON values).

    The child keeps only stdin/stdout/stderr and ``keep_fds`` open. SIGINT, SIGTERM and SIGHUP that
    reach this process are passed on to the child, whose ``work`` sees them through its argument and
    is expected to return soon; one that has not ended GRACE_SECONDS later is killed. Raises
    PrivilegeError when the child could not drop its privileges or ended without a result.
    """
    parent = os.getpid()
    read_end, write_end = os.pipe()
    # no signal may reach either side before it has its own handlers
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        _child(credentials, work, parent, read_end, write_end, keep_fds, mask)
    os.close(write_end)
    passed_on: list[float] = []
    reaped = False

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if not reaped:
            os.kill(pid, signum)
            passed_on.append(time.monotonic())

    previous = {sig: signal.signal(sig, pass_on) for sig in FORWARDED_SIGNALS}
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], 0.5)
            if ready:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            elif passed_on and time.monotonic() - passed_on[0] > GRACE_SECONDS:
                os.kill(pid, signal.SIGKILL)
        _, wait_status = os.waitpid(pid, 0)
        reaped = True
    finally:
        if not reaped:
            # this process is unwinding (an exception here): the child must not outlive it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            reaped = True
        os.close(read_end)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        message: dict[str, Any] = json.loads(b"".join(chunks)) if chunks else {}
    except ValueError:
        message = {}
    if "result" in message:
        result: dict[str, Any] = message["result"]
        return result
    if "error" in message:
        raise PrivilegeError(str(message["error"]))
    code = os.waitstatus_to_exitcode(wait_status)
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    raise PrivilegeError(f"the forwarder (pid {pid}) {how} without a result")


def _child(credentials: Credentials, work: Callable[[StopSignal], dict[str, Any]], parent: int, read_end: int,
           write_end: int, keep_fds: Iterable[int], mask: Iterable[int]) -> NoReturn:
    """The forked side of run_as: never returns into the caller's code."""
    status = 1
    try:
        requested: list[int] = []

        def request_stop(signum: int, frame: FrameType | None) -> None:
            requested.append(signum)

        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, request_stop)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_end)
        try:
            _close_fds_except({0, 1, 2, write_end, *keep_fds, *_stdio_fds()})
            drop_privileges(credentials)
            # die with the parent (set after the switch: changing ids clears it), unless it is gone already
            _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:
                raise PrivilegeError("the root process ended before the forwarder started")
            message: dict[str, Any] = {"result": work(lambda: requested[0] if requested else None)}
        except SoftGSOError as exc:
            message = {"error": str(exc)}
        except BaseException as exc:  # a bug: say so, and let the parent tear down
            traceback.print_exc()
            message = {"error": f"the forwarder failed: {type(exc).__name__}: {exc}"}
        payload = memoryview(json.dumps(message).encode())
        while payload:
            payload = payload[os.write(write_end, payload):]
        status = 0
    finally:
        os._exit(status)


def _stdio_fds() -> set[int]:
    """The descriptors behind sys.stdout and sys.stderr, where they have one."""
    fds = set()
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.add(stream.fileno())
        except (AttributeError, OSError, ValueError):
            pass
    return fds


def _close_fds_except(keep: set[int]) -> None:
    """Close every inherited descriptor that is not in ``keep`` (root opened them; the child needs none)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the descriptor of the listing itself, closed already
