"""`softgso datapath --user`: the forwarding loop runs unprivileged; the root process only tears down."""

from __future__ import annotations

import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from softgso.cli.commands import main
from softgso.datapath.privileges import Credentials, resolve_user
from softgso.datapath.run import DatapathOptions
from softgso.errors import UsageError
from softgso.io import open_capture

from .helpers import ROOT, json_stats, leftovers, proc_status, root_test, start_datapath


def uid_without_entry() -> int:
    """A uid that the password database does not know."""
    for uid in range(4_000_000_000, 4_000_001_000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("every candidate uid has an entry")


def nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this system")


def test_user_names_and_numeric_uids_resolve() -> None:
    entry = nobody()
    expected = Credentials("nobody", entry.pw_uid, entry.pw_gid)
    assert resolve_user("nobody") == resolve_user(str(entry.pw_uid)) == expected
    # a uid without an entry runs with the group of the same number
    uid = uid_without_entry()
    assert resolve_user(str(uid)) == Credentials(str(uid), uid, uid)


@pytest.mark.parametrize("user", ["root", "0"])
def test_root_is_not_a_user_to_drop_to(user: str) -> None:
    with pytest.raises(UsageError, match="that is root"):
        resolve_user(user)


def test_an_unknown_user_is_a_usage_error_before_anything_is_built() -> None:
    result = CliRunner().invoke(main, ["datapath", "--user", "no-such-user-sgso", "--duration", "0.1", "--no-live"])
    assert result.exit_code == 2
    assert "--user 'no-such-user-sgso': no such user on this system" in result.stderr
    if ROOT:
        assert leftovers() == ([], [])


def test_user_with_selftest_is_refused() -> None:
    with pytest.raises(UsageError, match="not to --selftest"):
        DatapathOptions(selftest=True, user="nobody").validate()


@root_test
def test_the_forwarder_runs_unprivileged_and_still_forwards(tmp_path: Path) -> None:
    entry = nobody()
    capture = tmp_path / "link.pcap"
    running = start_datapath("--user", "nobody", "--capture", str(capture))
    try:
        forwarder = running.forwarder_pid()
        status = proc_status(forwarder)
        ids = "\t".join([str(entry.pw_uid)] * 4), "\t".join([str(entry.pw_gid)] * 4)
        assert (status["Uid"], status["Gid"], status["Groups"].strip()) == (*ids, "")
        assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
        assert status["NoNewPrivs"] == "1"
        # the parent keeps root, to tear down
        assert proc_status(running.pid)["Uid"].split()[0] == "0"
        assert running.tcp_transfer_verified()
    finally:
        code, out, err = running.stop(signal.SIGINT)
    assert code == 0, err
    stats = json_stats(out)
    assert stats["forwarder"] == {"pid": forwarder, "uids": [entry.pw_uid] * 3, "gids": [entry.pw_gid] * 3,
                                  "groups": []}
    # written by the unprivileged forwarder, committed by the root process
    link_frames = sum(stats[d]["link_frames"] for d in ("west_to_east", "east_to_west"))
    with open_capture(capture) as reader:
        assert link_frames > 0 and sum(1 for _ in reader) == link_frames
    assert not list(tmp_path.glob(".link.pcap.*"))
    assert leftovers(running.pid) == ([], [])


@root_test
def test_the_forwarder_does_not_outlive_a_killed_root_process() -> None:
    running = start_datapath("--user", "nobody")
    forwarder = running.forwarder_pid()
    running.process.kill()
    running.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if proc_status(forwarder)["State"].startswith("Z"):
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the forwarder kept running after its root process was killed")
    # its TAPs went with it (closing the last descriptor deletes a TAP); only the empty namespaces stay,
    # since SIGKILL leaves the root process no time to tear down
    for name, tap in ((running.west, running.west_tap), (running.east, running.east_tap)):
        links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert "lo" in links and tap not in links
        subprocess.run(["ip", "netns", "del", name], check=True)
    # the link's namespaces stay too, with the veth between them (no process holds it any more)
    for name in running.link_netns:
        subprocess.run(["ip", "netns", "del", name], check=True)
    assert leftovers(running.pid) == ([], [])
