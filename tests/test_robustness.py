"""Label pushes on runt records: an ActionError naming the kernel check, never a crash (the fuzz pass found these)."""

from __future__ import annotations

import pytest

from softgso.actions import PushMpls, push_mpls
from softgso.errors import ActionError
from softgso.prepare import packet_from_capture

# --- regressions: crashes the fuzzers found ------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4, 13])
def test_push_mpls_on_a_frame_shorter_than_its_link_header_is_an_action_error(length: int) -> None:
    skb = packet_from_capture(bytes(length), None)  # a runt Ethernet record (was: struct.error)
    with pytest.raises(ActionError, match="ends inside its 14-byte link-layer header"):
        push_mpls(skb, 100)


def test_push_mpls_action_on_a_runt_record_is_refused_not_crashed() -> None:
    from softgso.job import apply_actions

    frame, error = apply_actions(b"\x00\x06A@", (PushMpls(100),))
    assert frame == b"\x00\x06A@" and isinstance(error, ActionError)
    assert "skb_mpls_push" in str(error)
