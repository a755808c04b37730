"""The engine's records behave as the dataclasses they stand for: the standard library's dataclasses
are the reference (same fields, defaults, repr, equality, hash, read-only fields, replace)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from softgso.bulk.fastpath import LinkShape, RunResult, SegmentPlan, TunnelShape
from softgso.cli.runner import SegmentRequest
from softgso.features import PROFILES, DeviceProfile, NetdevFeature
from softgso.gso import GsoContext, InetOffload
from softgso.io.cooked import EthernetView
from softgso.io.record import CaptureRecord, Interface
from softgso.job import PacketResult, SegmentOptions, Summary
from softgso.offload.tunnels import TunnelLayout
from softgso.packet import Packet
from softgso.prepare import FrameLayout
from softgso.valueclass import FieldsClass, FrozenFieldsClass, FrozenValueClass, ValueClass
from softgso.virtio import VirtioNetHdr

# each record and the dataclass options it stands for
RECORDS: dict[type, dict[str, bool]] = {
    DeviceProfile: {"frozen": True}, VirtioNetHdr: {"frozen": True}, FrameLayout: {"frozen": True},
    InetOffload: {"frozen": True}, TunnelLayout: {"frozen": True}, SegmentOptions: {"frozen": True},
    TunnelShape: {"frozen": True}, LinkShape: {"frozen": True}, SegmentRequest: {"frozen": True},
    SegmentPlan: {"frozen": True, "eq": False}, Packet: {"eq": False},
    GsoContext: {}, EthernetView: {}, CaptureRecord: {}, Interface: {}, PacketResult: {}, Summary: {}, RunResult: {},
}
BASES = {(True, True): FrozenValueClass, (True, False): FrozenFieldsClass, (False, True): ValueClass,
         (False, False): FieldsClass}


def reference(record: type) -> Any:
    """The dataclass ``record`` stands for: its fields, in order, with ``__init__``'s defaults."""
    parameters = inspect.signature(record.__init__).parameters
    spec = []
    for field in dataclasses.fields(record):
        default = parameters[field.name].default
        options = {} if default is inspect.Parameter.empty else {"default": default}
        spec.append((field.name, field.type, dataclasses.field(compare=field.compare, **options)))
    return dataclasses.make_dataclass(record.__name__, spec, **RECORDS[record])


@pytest.mark.parametrize("record", list(RECORDS), ids=lambda record: record.__name__)
def test_a_record_has_its_init_parameters_as_fields_and_its_dataclass_options(record: type) -> None:
    parameters = list(inspect.signature(record.__init__).parameters)[1:]
    assert [field.name for field in dataclasses.fields(record)] == parameters
    assert list(record.__annotations__) == parameters
    options = RECORDS[record]
    assert issubclass(record, BASES[options.get("frozen", False), options.get("eq", True)])
    assert dataclasses.is_dataclass(record)


def _values(tag: int) -> dict[str, Any]:
    return {"a": tag, "b": "x", "c": (1, 2)}


class Example(FrozenValueClass):
    """A frozen record of three fields, one left out of equality."""

    a: int
    b: str
    c: tuple[int, ...]
    COMPARE_EXCLUDED = frozenset({"b"})

    def __init__(self, a: int, b: str = "x", c: tuple[int, ...] = ()) -> None:
        from softgso.valueclass import init_fields

        init_fields(self, locals())


@dataclasses.dataclass(frozen=True)
class ExampleDataclass:
    a: int
    b: str = dataclasses.field(default="x", compare=False)
    c: tuple[int, ...] = ()


def test_repr_equality_and_hash_are_the_dataclass_s() -> None:
    ours, theirs = Example(1, "y", (2,)), ExampleDataclass(1, "y", (2,))
    assert repr(ours).replace("Example", "ExampleDataclass", 1) == repr(theirs)
    pairs = [((1, "y", (2,)), (1, "z", (2,))), ((1, "y", (2,)), (2, "y", (2,))), ((1, "y", ()), (1, "y", (3,)))]
    for left, right in pairs:
        assert (Example(*left) == Example(*right)) == (ExampleDataclass(*left) == ExampleDataclass(*right))
        if Example(*left) == Example(*right):
            assert hash(Example(*left)) == hash(Example(*right))
    assert Example(1) != ExampleDataclass(1) and Example(1) != (1, "x", ())


def test_a_frozen_record_refuses_assignment_and_deletion_as_a_frozen_dataclass_does() -> None:
    ours, theirs = Example(1), ExampleDataclass(1)
    for target in (ours, theirs):
        with pytest.raises(AttributeError, match="cannot assign to field 'a'"):
            target.a = 2  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del target.a  # type: ignore[misc]


def test_replace_and_the_dataclasses_functions_agree() -> None:
    ours = Example(1, "y", (2,))
    assert ours.replace(a=5) == dataclasses.replace(ours, a=5) == Example(5, "y", (2,))
    assert dataclasses.asdict(ours) == dataclasses.asdict(ExampleDataclass(1, "y", (2,)))
    assert [(f.name, f.default, f.compare) for f in dataclasses.fields(Example)] == \
        [(f.name, f.default, f.compare) for f in dataclasses.fields(ExampleDataclass)]


def test_a_mutable_record_is_unhashable_and_a_frozen_one_is_hashable_as_dataclasses_are() -> None:
    record = CaptureRecord(0, 0, 1, b"ab", 2)
    with pytest.raises(TypeError):
        hash(record)
    assert record == CaptureRecord(0, 0, 1, b"ab", 2) != CaptureRecord(1, 0, 1, b"ab", 2)
    layout = LinkShape(((0, 14),), -1)
    assert {layout: 1}[LinkShape(((0, 14),), -1)] == 1
    packet = Packet(bytearray(b"ab"))
    assert packet != Packet(bytearray(b"ab")) and packet == packet  # eq=False: identity


@pytest.mark.parametrize("record", [DeviceProfile, FrameLayout, LinkShape], ids=lambda record: record.__name__)
def test_a_record_prints_equals_and_hashes_as_its_dataclass(record: type) -> None:
    samples = {
        DeviceProfile: [PROFILES["no-offload"], PROFILES["no-offload"].with_overrides(description="other"),
                        PROFILES["no-offload"].with_overrides(mtu=9000)],
        FrameLayout: [FrameLayout(0, 0, 14, 4, 20, 6, 34, 20, 100), FrameLayout(0, 0, 14, 4, 20, 6, 34, 20, 100, True),
                      FrameLayout(0, 0, 14, 4, 20, 6, 34, 20, 100)],
        LinkShape: [LinkShape(((0, 14),), -1), LinkShape(((0, 14),), 3), LinkShape(((0, 14),), -1)],
    }[record]
    like = reference(record)
    twins = [like(**{name: getattr(sample, name) for name in sample._fields}) for sample in samples]
    for sample, twin in zip(samples, twins, strict=True):
        assert repr(sample) == repr(twin).replace(".<locals>", "")
    for (a, twin_a) in zip(samples, twins, strict=True):
        for (b, twin_b) in zip(samples, twins, strict=True):
            assert (a == b) == (twin_a == twin_b)
            if a == b:
                assert hash(a) == hash(b)


def test_records_copy_and_pickle_whole() -> None:
    options = SegmentOptions(device=PROFILES["tso"].with_overrides(features=NetdevFeature.NONE), gso_size=1000)
    assert options.tunnel_port_kinds == {}  # a cached property, kept beside the read-only fields
    for record in (options, CaptureRecord(3, 7, 1, b"ab", 9, comment="c"), Interface(1, 65535, 10**6)):
        assert copy.deepcopy(record) == record
        assert pickle.loads(pickle.dumps(record)) == record
