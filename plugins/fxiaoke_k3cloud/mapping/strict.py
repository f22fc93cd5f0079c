"""The strict base of the mapping-file models: unknown keys refused with the allowed list, no type coercion, and
the transform-call vocabulary (``strip`` or ``{name: truncate, max: 80}``) checked against the registry.

:mod:`.schema` builds the mapping file's models on these.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from .transforms import REGISTRY, TransformArgError


def scalar_only(value: Any) -> Any:
    """``value`` if it is text, a number, a bool or None; else a ``not_scalar`` error."""
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise PydanticCustomError("not_scalar", "must be text, a number, true/false or null; got {kind}", {"kind": type(value).__name__})
    return value


class Strict(BaseModel):
    """Base: unknown keys fail with the allowed list; no type coercion ("yes" is not a bool, 100 is not text)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        """Hook for shorthand spellings, run before the unknown-key check."""
        return data

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        data = cls._normalize(data)
        if isinstance(data, dict):
            allowed = [f.alias or name for name, f in cls.model_fields.items()]
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_key", "unknown key; allowed: {allowed}", {"key": str(key), "allowed": ", ".join(allowed)}
                    )
        return data


class TransformCall(Strict):
    """One transform: ``strip`` or ``{name: truncate, max: 80}``."""

    name: str = Field(title="Transform name", examples=["truncate"])
    args: dict[str, Any] = Field(default_factory=dict, title="Arguments", examples=[{"max": 80}])

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data, "args": {}}
        if isinstance(data, dict) and "args" not in data:
            if "name" not in data:
                raise PydanticCustomError("missing_name", "a transform needs a name, e.g. name: truncate")
            return {"name": data["name"], "args": {k: v for k, v in data.items() if k != "name"}}
        return data

    @model_validator(mode="after")
    def _registered(self) -> TransformCall:
        spec = REGISTRY.get(self.name)
        if spec is None:
            raise PydanticCustomError(
                "unknown_transform", "unknown transform '{name}'; allowed: {allowed}",
                {"name": self.name, "allowed": ", ".join(sorted(REGISTRY))},
            )
        try:
            object.__setattr__(self, "args", spec.check_args(self.args))
        except TransformArgError as exc:
            raise PydanticCustomError("bad_argument", str(exc), {"key": exc.key} if exc.key else {}) from None
        return self


def as_chain(value: Any) -> Any:
    """A transform chain as a list: none, one call, or a list of calls."""
    return [] if value is None else value if isinstance(value, list) else [value]


TransformChain = Annotated[list[TransformCall], Field(default_factory=list)]


__all__ = ["Strict", "TransformCall", "TransformChain", "as_chain", "scalar_only"]
