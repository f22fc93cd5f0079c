"""The mapping engine: mapping files (YAML, validated on load) and the vectorised transform they drive.

Public API::

    load_mapping(path) -> FlowMapping                 # raises MappingError(file=, key=)
    transform(mapping, records, *, lines=None, lookups=None) -> TransformResult
    TransformResult(packages, rejected, parked, held, reported, …), Package, Rejection, Parked, Skipped
    REGISTRY                                          # the named transforms a mapping may use
"""

from __future__ import annotations

from .engine import compile_plan, transform
from .loader import load_mapping, parse_mapping
from .result import FieldProblem, Package, Parked, Rejection, Skipped, TransformResult
from .schema import FlowMapping
from .transforms import REGISTRY

__all__ = [
    "REGISTRY",
    "FieldProblem",
    "FlowMapping",
    "Package",
    "Parked",
    "Rejection",
    "Skipped",
    "TransformResult",
    "compile_plan",
    "load_mapping",
    "parse_mapping",
    "transform",
]
