"""One registry helper for every family of named things: extractors, audio feature sets, reduce
modalities, CTR models, classifier aggregations and fusions, executors, dataset adapters.

A family creates one ``Registry`` and its members register themselves by name (as torchvision's
``register_model`` / ``get_model`` / ``list_models``)::

    EXTRACTORS = Registry("visual extractor", key="visual.extractors", plugins="pipeline.visual.extractors")

    @EXTRACTORS.register("resnet152")
    class ResNet152(Extractor): ...

    EXTRACTORS.get("resnet152"); EXTRACTORS.names()

``plugins`` names a module that registers every member (keep it light), or a package that holds one module per member, named as the member: ``names()`` lists
its modules without importing them (so validating params never imports torch), and ``get(name)``
imports ``<plugins>.<name>``, whose decorator registers it (the one place where a registry and its
members import each other). Modules whose names start with ``_`` are shared helpers, not members. An unknown name raises
``UnknownName``, which lists the registered names; params validation calls ``check`` so a typo fails
when params are read, not after every upstream stage ran. Top-level and dependency-free, so that both
``models/`` (a leaf) and ``pipeline/`` use it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class UnknownName(ValueError):
    """A name that no member of the registry has; the message lists the valid names."""


class Registry(Generic[T]):
    def __init__(self, kind: str, *, key: str = "", plugins: str | None = None):
        self.kind = kind  # what a member is, for messages ("CTR model")
        self.key = key  # the params key that names members ("ctr.model"), for messages
        self.plugins = plugins
        self._members: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, member: T) -> T: ...
    def register(self, name: str, member: T | None = None):  # noqa: E301
        """Register ``member`` under ``name``; without ``member``, a decorator."""

        def add(obj: T) -> T:
            if name in self._members and self._members[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._members[name] = obj
            return obj

        return add if member is None else add(member)

    def register_class(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``register(name)`` that also sets the class's ``name`` (extractors, joints)."""

        def add(cls: T) -> T:
            cls.name = name  # type: ignore[attr-defined]
            return self.register(name, cls)

        return add

    def get(self, name: str) -> T:
        self.check(name)
        if name not in self._members:  # a plugin module not imported yet: importing it registers the member
            importlib.import_module(f"{self.plugins}.{name}")
        return self._members[name]

    def check(self, name: str, key: str | None = None) -> str:
        """``name`` if registered (importing nothing), else ``UnknownName`` naming the valid ones and the closest.

        ``key``: the params key that holds the name, when more precise than the registry's own
        (``audio.feature_sets[1]``).
        """
        valid = self.names()
        if name not in valid:
            close = difflib.get_close_matches(str(name), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f" in {key or self.key}" if key or self.key else ""
            raise UnknownName(f"unknown {self.kind} {name!r}{where}{hint}; registered: {', '.join(valid)}")
        return name

    def names(self) -> list[str]:
        """Every registered name, plugin modules included (listed, not imported)."""
        plugins = self._plugin_names()  # first: a plugin module registers its members on import
        return sorted(set(self._members) | set(plugins))

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, member) pairs; imports every plugin module."""
        return iter([(name, self.get(name)) for name in self.names()])

    def members(self) -> dict[str, T]:
        """Every member in registration order (imports every plugin module)."""
        for name in self._plugin_names():
            self.get(name)
        return dict(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def unregister(self, name: str) -> None:
        """Remove a member (tests that register a toy one clean up with this)."""
        self._members.pop(name, None)

    def _plugin_names(self) -> list[str]:
        if not self.plugins:
            return []
        spec = importlib.util.find_spec(self.plugins)  # imports the parent packages, not the plugins package
        if spec is None:
            raise ValueError(f"{self.kind} plugins: no module {self.plugins!r}")
        if spec.submodule_search_locations is None:  # a module registering all its members: import it (keep it light)
            importlib.import_module(self.plugins)
            return []
        return [m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if not m.name.startswith("_")]
