"""A tiny mixin so every socket- or file-holding object is a context manager the same way."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closeable"]


class Closeable:
    """Gives ``with obj: ...`` semantics to any class with a ``close()`` method."""

    def close(self) -> None:
        """Release the resources; subclasses override."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
