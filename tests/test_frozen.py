"""quick_init: the same instances as the dataclass __init__, still frozen; refused where it would differ."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from onenumber.frozen import quick_init


@dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str | None = None
    c: tuple[int, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class _Quick:
    a: int
    b: str | None = None
    c: tuple[int, ...] = ()


def test_same_fields_defaults_and_keywords() -> None:
    for args, kwargs in (((1,), {}), ((1, "x"), {}), ((1,), {"c": (2, 3)}), ((), {"a": 4, "b": "y", "c": ()})):
        q, p = _Quick(*args, **kwargs), _Plain(*args, **kwargs)
        assert dataclasses.astuple(q) == dataclasses.astuple(p)
    assert _Quick(1, "x") == _Quick(1, "x") and hash(_Quick(1, "x")) == hash(_Quick(1, "x"))
    assert _Quick.__init__.__qualname__ == "_Quick.__init__"


def test_still_frozen_and_checks_arguments() -> None:
    q = _Quick(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, d=2)  # type: ignore[call-arg]


def test_refused_where_it_would_differ() -> None:
    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (NotFrozen, Factory, Post, NoSlots):
        with pytest.raises(TypeError):
            quick_init(cls)
