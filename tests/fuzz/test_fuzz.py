"""Fuzzing the engine's public entry points: hostile bytes and metadata get a SoftGSOError, never a crash.

Each test draws cases from :mod:`fuzz_strategies` and runs them through a target of
:mod:`targets`; the target fails the test on any exception that is not one of softgso's
documented errors, and on unbounded output. ``SOFTGSO_FUZZ_EXAMPLES`` sets how hard each test
tries (see conftest.py).
"""

from __future__ import annotations

import pytest
from fuzz_strategies import (
    action_cases,
    capture_files,
    damaged_pcaps,
    engine_cases,
    frame_cases,
    fuzz_settings,
    mix_cases,
    profile_cases,
    skb_cases,
    virtio_cases,
)
from hypothesis import given
from hypothesis import strategies as st
from targets import (
    ActionCase,
    CaptureCase,
    EngineCase,
    FrameCase,
    MixCase,
    ProfileCase,
    SkbCase,
    VirtioCase,
    io_available,
    run_actions,
    run_capture,
    run_engines,
    run_engines_mix,
    run_engines_on_file,
    run_inspect,
    run_inspect_mix,
    run_process_frame,
    run_profile,
    run_transmit,
    run_virtio,
)

from softgso.cli.action_grammar import parse_action
from softgso.errors import UsageError


@fuzz_settings()
@given(skb_cases())
def test_transmit_answers_any_skb_metadata_with_segments_or_a_documented_error(case: SkbCase) -> None:
    run_transmit(case)


@fuzz_settings()
@given(frame_cases())
def test_process_frame_never_raises_and_never_loses_a_packet(case: FrameCase) -> None:
    run_process_frame(case)


@fuzz_settings()
@given(virtio_cases())
def test_virtio_net_hdr_to_skb_refuses_bad_headers_with_virtio_header_error(case: VirtioCase) -> None:
    run_virtio(case)


@fuzz_settings()
@given(action_cases())
def test_mpls_and_vlan_actions_refuse_with_action_error_only(case: ActionCase) -> None:
    run_actions(case)


@fuzz_settings()
@given(st.text(max_size=60))
def test_parse_action_refuses_any_text_with_usage_error(text: str) -> None:
    try:
        parse_action(text)
    except UsageError as error:
        assert str(error)


@fuzz_settings(weight=0.5)
@given(profile_cases())
def test_device_profile_files_refuse_with_usage_error(case: ProfileCase) -> None:
    run_profile(case)


@pytest.mark.skipif(not io_available(), reason="softgso.io (capture reader/writer) is not there yet")
@fuzz_settings(weight=0.5)
@given(capture_files())
def test_capture_readers_refuse_broken_files_with_capture_error(case: CaptureCase) -> None:
    run_capture(case)


@fuzz_settings(weight=0.1)
@given(engine_cases())
def test_bulk_engine_writes_what_the_scalar_engine_writes(case: EngineCase) -> None:
    run_engines(case)


@pytest.mark.skipif(not io_available(), reason="softgso.io (capture reader/writer) is not there yet")
@fuzz_settings(weight=0.25)
@given(capture_files())
def test_inspect_and_diff_answer_any_file_with_a_report_or_a_documented_exit_status(case: CaptureCase) -> None:
    run_inspect(case)


@pytest.mark.skipif(not io_available(), reason="softgso.io (capture reader/writer) is not there yet")
@fuzz_settings(weight=0.1)
@given(damaged_pcaps())
def test_bulk_and_scalar_engines_agree_on_damaged_files(case: CaptureCase) -> None:
    run_engines_on_file(case)


@pytest.mark.skipif(not io_available(), reason="softgso.io (capture reader/writer) is not there yet")
@fuzz_settings(weight=1.0)
@given(mix_cases())
def test_bulk_engines_write_what_the_scalar_engine_writes_on_interleaved_flows(case: MixCase) -> None:
    """Many flows taking turns, in pcap and pcapng of every link type the bulk stream takes, over
    small chunks and a small shape table: byte for byte what the scalar engine writes."""
    run_engines_mix(case)


@pytest.mark.skipif(not io_available(), reason="softgso.io (capture reader/writer) is not there yet")
@fuzz_settings(weight=0.5)
@given(st.one_of(mix_cases(), mix_cases(host=True)))
def test_inspect_reports_what_its_scalar_engine_reports_on_interleaved_flows(case: MixCase) -> None:
    """Many flows taking turns, a sending host's flows among them (shapes of every length, signed
    packets in a flow, seeds, padding, checksums in every state): inspect's report is the one its
    per-frame reference gives."""
    run_inspect_mix(case)


@pytest.mark.skipif(not io_available(), reason="softgso.io (capture reader/writer) is not there yet")
@fuzz_settings(weight=0.5)
@given(mix_cases(host=True))
def test_bulk_engines_write_what_the_scalar_engine_writes_on_a_hosts_flows(case: MixCase) -> None:
    """A sending host's capture: super-packets of many lengths with ACKs between them (seeds completed
    in bulk, runs of bytes among the runs, templates of any length), padding, FCS, checksums in every
    state: byte for byte what the scalar engine writes."""
    run_engines_mix(case)
