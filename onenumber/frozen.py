"""`quick_init`: a cheaper `__init__` for the frozen slots dataclasses built on the call path.

For a frozen dataclass CPython (3.11) generates an `__init__` that stores every field with
`object.__setattr__(self, name, value)` (the class's own `__setattr__` refuses): a global
lookup and a generic call per field, about 2.5× a plain assignment. The call events, the ring
plan and the presence dialogs are built several times per call, so `quick_init` gives such a
class an `__init__` that stores through the slots' own descriptors instead (same parameters,
same defaults); instances stay frozen, compare and hash as before.

Not for the compiled SIP core (mypyc writes its own `__init__` for its classes), and refused
(TypeError) for what the generated `__init__` would not do: `__post_init__`, `default_factory`,
keyword-only or `init=False` fields.
"""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Replace the dataclass `__init__` of `cls` (frozen, with slots); returns `cls`."""
    params: Any = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init is for frozen dataclasses with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init does not call __post_init__")
    namespace: dict[str, Any] = {}
    args: list[str] = []
    body: list[str] = []
    for f in fields(cls):
        if not f.init or f.kw_only or f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init handles plain fields only")
        if f.default is MISSING:
            args.append(f.name)
        else:
            namespace[f"_d_{f.name}"] = f.default
            args.append(f"{f.name}=_d_{f.name}")
        namespace[f"_s_{f.name}"] = getattr(cls, f.name).__set__  # the slot's member descriptor
        body.append(f"    _s_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)  # field names only: the class's own, valid identifiers
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy refuses assigning a method directly
    return cls
