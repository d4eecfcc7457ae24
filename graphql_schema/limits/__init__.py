"""Limits that hold against hostile GraphQL documents: size, tokens, depth, aliases,
fields and cost, all checked before anything resolves, in time linear in the document."""

from graphql_schema.limits.analysis import OperationCost, analyse_operation, check_operation
from graphql_schema.limits.budget import QueryLimits
from graphql_schema.limits.document import check_document_text
from graphql_schema.limits.extension import QueryLimitsExtension, query_limits

__all__ = [
    "OperationCost",
    "QueryLimits",
    "QueryLimitsExtension",
    "analyse_operation",
    "check_document_text",
    "check_operation",
    "query_limits",
]
