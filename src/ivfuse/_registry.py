"""One name -> object registry, used for models, losses, recipes and metrics.

A :class:`Registry` is a mapping from names to registered objects (factories, entries, metric
descriptions). It refuses to register a second, different object under a taken name, and its
:meth:`Registry.get` fails with a one-line ``ValueError`` that lists the registered names::

    >>> colours = Registry("colour")
    >>> _ = colours.register("red", 1)
    >>> colours.get("red")
    1
    >>> colours.get("blu")
    Traceback (most recent call last):
    ...
    ValueError: unknown colour 'blu'; registered: red

An optional ``normalize`` function makes lookups tolerant (e.g. case-insensitive), and
``aliases`` give an object more accepted names; :meth:`Registry.canonical` maps any accepted
spelling onto the registered name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
_MISSING = object()


class Registry(MutableMapping[str, T], Generic[T]):
    """Named objects of one kind, in registration order.

    Args:
        kind: what the names are, used in error messages ("model", "loss", ...).
        normalize: maps a spelling to its lookup key (default: the name itself).
        same: decides whether an object given again under a taken name is the registered one
            (default: identity); registering it again replaces the entry.
        sort: :meth:`names` (and the error messages) list the names sorted; False keeps the
            registration order (a table order, e.g. the metrics').
    """

    def __init__(
        self,
        kind: str,
        normalize: Callable[[str], str] | None = None,
        same: Callable[[T, T], bool] | None = None,
        sort: bool = True,
    ) -> None:
        self.kind = kind
        self._sort = sort
        self._normalize = normalize
        self._same = same or (lambda a, b: a is b)
        self._items: dict[str, T] = {}
        self._keys: dict[str, str] = {}  # normalised spelling -> registered name

    # -- registration ---------------------------------------------------------------------
    def register(self, name: str, obj: T, aliases: Iterable[str] = ()) -> T:
        """Register ``obj`` under ``name`` (and ``aliases``) and return it.

        Raises:
            ValueError: ``name`` is taken by a different object.
        """
        if name in self._items and not self._same(self._items[name], obj):
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._items[name] = obj
        for spelling in (name, *aliases):
            self._keys[self._key(spelling)] = name
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator(name)`` registers the decorated object under ``name``."""

        def deco(obj: T) -> T:
            return self.register(name, obj)

        return deco

    # -- lookup ---------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return self._normalize(name) if self._normalize is not None else name

    def canonical(self, name: str) -> str:
        """The registered name for an accepted spelling of it.

        Raises:
            ValueError: unknown name; the message lists the registered ones.
        """
        found = self._keys.get(self._key(name)) if isinstance(name, str) else None
        if found is None or found not in self._items:
            raise self.unknown(name)
        return found

    def get(self, name: str, default=_MISSING):  # type: ignore[override]
        """The object registered under ``name`` (or an alias / normalised spelling of it).

        Without ``default``, an unknown name raises ``ValueError`` listing the registered names;
        with it, ``default`` is returned instead (the ``Mapping.get`` behaviour).
        """
        try:
            return self._items[self.canonical(name)]
        except ValueError:
            if default is _MISSING:
                raise
            return default

    def names(self, pattern: str = "*", sort: bool | None = None) -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted or in registration order.

        Args:
            pattern: e.g. ``"pomai*"``.
            sort: sort them; None uses the registry's setting.
        """
        found = [n for n in self._items if fnmatch.fnmatch(n, pattern)]
        return sorted(found) if (self._sort if sort is None else sort) else found

    def unknown(self, name: object) -> ValueError:
        """The error for an unknown name: close matches first, then every registered name."""
        shown = f"'{name}'" if isinstance(name, str) else repr(name)
        close = fnmatch.filter(self._items, f"*{name}*") if isinstance(name, str) and name else []
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return ValueError(f"unknown {self.kind} {shown}{hint}; registered: {', '.join(self.names()) or 'none'}")

    # -- mapping protocol -----------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __setitem__(self, name: str, obj: T) -> None:
        self._items[name] = obj
        self._keys[self._key(name)] = name

    def __delitem__(self, name: str) -> None:
        del self._items[name]
        self._keys = {k: v for k, v in self._keys.items() if v != name}

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
