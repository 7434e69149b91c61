"""Specifications: composable, serialisable query predicates for CQRS/DDD repositories.

Build a tree with ``SpecificationBuilder`` (or ``&``, ``|``, ``~`` on nodes), evaluate
it in memory with ``is_satisfied_by`` (SQL three-valued logic), send it over the wire
with ``to_dict``/``from_dict``, and hand it to a repository inside ``QueryOptions``.
"""

from .builder import SpecificationBuilder as SpecificationBuilder
from .exceptions import InvalidFieldError as InvalidFieldError
from .exceptions import InvalidOperandError as InvalidOperandError
from .exceptions import InvalidQueryOptionsError as InvalidQueryOptionsError
from .exceptions import MalformedSpecificationError as MalformedSpecificationError
from .exceptions import SpecificationError as SpecificationError
from .exceptions import SpecificationEvaluationError as SpecificationEvaluationError
from .exceptions import UnknownOperatorError as UnknownOperatorError
from .fields import resolve_field as resolve_field
from .fields import validate_field as validate_field
from .operators import Evaluator as Evaluator
from .operators import Operator as Operator
from .operators import OperatorRegistry as OperatorRegistry
from .operators import Validator as Validator
from .operators import build_default_registry as build_default_registry
from .operators import like_to_regex as like_to_regex
from .query_options import OrderBy as OrderBy
from .query_options import QueryOptions as QueryOptions
from .specification import AndSpecification as AndSpecification
from .specification import AttributeSpecification as AttributeSpecification
from .specification import NotSpecification as NotSpecification
from .specification import OrSpecification as OrSpecification
from .specification import Specification as Specification
from .specification import TrueSpecification as TrueSpecification

__all__ = [
    "AndSpecification",
    "AttributeSpecification",
    "Evaluator",
    "InvalidFieldError",
    "InvalidOperandError",
    "InvalidQueryOptionsError",
    "MalformedSpecificationError",
    "NotSpecification",
    "Operator",
    "OperatorRegistry",
    "OrSpecification",
    "OrderBy",
    "QueryOptions",
    "Specification",
    "SpecificationBuilder",
    "SpecificationError",
    "SpecificationEvaluationError",
    "TrueSpecification",
    "UnknownOperatorError",
    "Validator",
    "build_default_registry",
    "like_to_regex",
    "resolve_field",
    "validate_field",
]
