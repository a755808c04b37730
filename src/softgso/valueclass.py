"""Classes of named fields, in the shape of dataclasses, without the dataclasses module's start-up cost.

``@dataclass`` writes each class's methods as source text and compiles them when the module is
imported (about 0.8 ms a class), and importing dataclasses brings inspect, ast, dis and tokenize
(over 10 ms): together a third of a plain ``softgso segment``'s start-up. The engine's records are
plain classes instead: each writes its own ``__init__`` (typed, as fast as the generated one), and
derives from one of the bases below for what a dataclass generates from the fields alone:

    FieldsClass        repr, ``replace(**changes)``; identity equality (``@dataclass(eq=False)``)
    ValueClass         and equality field by field, unhashable (``@dataclass``)
    FrozenValueClass   and read-only fields, hashed by them (``@dataclass(frozen=True)``)
    FrozenFieldsClass  read-only fields, identity equality (``@dataclass(frozen=True, eq=False)``)

The fields are the class's own annotations, in order; ``COMPARE_EXCLUDED`` names those equality and
the hash leave out (``field(compare=False)``). ``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` keep working on them: ``__dataclass_fields__`` is made on first use (importing
dataclasses then), from the fields and ``__init__``'s defaults (a default made per instance, such as a
list's, shows as its ``None``).
"""

from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self


def init_fields(instance: object, values: dict[str, Any]) -> None:
    """Set every field of ``instance`` from ``values`` (an ``__init__``'s ``locals()``), read-only or not."""
    for name in type(instance)._fields:  # type: ignore[attr-defined]
        object.__setattr__(instance, name, values[name])


class _DataclassFields:
    """``__dataclass_fields__``, built on first use (and then kept on the class) for the dataclasses functions."""

    def __get__(self, instance: object, owner: type) -> dict[str, Any]:
        import dataclasses
        import inspect

        parameters = inspect.signature(owner.__init__).parameters  # type: ignore[misc]
        spec = []
        for name in owner._fields:  # type: ignore[attr-defined]
            default = parameters[name].default
            options: dict[str, Any] = {} if default is inspect.Parameter.empty else {"default": default}
            if name in owner.COMPARE_EXCLUDED:  # type: ignore[attr-defined]
                options["compare"] = False
            spec.append((name, owner.__annotations__.get(name, "Any"), dataclasses.field(**options)))
        shadow: Any = dataclasses.make_dataclass(owner.__name__, spec)
        made: dict[str, Any] = shadow.__dataclass_fields__
        if owner._fields:  # type: ignore[attr-defined]
            type.__setattr__(owner, "__dataclass_fields__", made)  # a base keeps the descriptor for its subclasses
        return made


class FieldsClass:
    """Named fields with a dataclass's repr and a ``replace``; equal only to itself."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    COMPARE_EXCLUDED: ClassVar[frozenset[str]] = frozenset()
    # the compared fields' values as a tuple (equality, hash)
    _compared: ClassVar[attrgetter[Any]]
    __dataclass_fields__: ClassVar[dict[str, Any]] = _DataclassFields()  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [name for name, kind in cls.__dict__.get("__annotations__", {}).items()
               if not str(kind).startswith(("ClassVar", "typing.ClassVar"))]
        cls._fields = (*cls._fields, *(name for name in own if name not in cls._fields))
        setattr(cls, "__match_args__", cls._fields)  # noqa: B010 - a class attribute mypy would not let be set
        compared = [name for name in cls._fields if name not in cls.COMPARE_EXCLUDED]
        cls._compared = attrgetter(*compared, "__class__")  # a tuple even for one field

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({values})"

    def replace(self, **changes: Any) -> Self:
        """A copy with the fields in ``changes`` replaced (``dataclasses.replace``)."""
        for name in self._fields:
            if name not in changes:
                changes[name] = getattr(self, name)
        return type(self)(**changes)


class ValueClass(FieldsClass):
    """Named fields, equal when of one class with equal fields (and so not hashable)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared(self) == self._compared(other)


class _ReadOnly:
    """Fields that cannot be set or deleted after ``__init__`` (which sets them through ``init_fields``)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")


class FrozenValueClass(_ReadOnly, ValueClass):
    """Read-only named fields, equal and hashed by their values."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._compared(self))


class FrozenFieldsClass(_ReadOnly, FieldsClass):
    """Read-only named fields, equal only to itself."""

    __slots__ = ()


def same_fields(a: FieldsClass, b: FieldsClass) -> bool:
    """Whether ``a`` and ``b`` are of one class with equal fields (what a ValueClass's ``==`` says, for
    classes whose ``==`` is identity)."""
    return a._compared(a) == b._compared(b)


__all__ = ["FieldsClass", "FrozenFieldsClass", "FrozenValueClass", "ValueClass", "init_fields", "same_fields"]
