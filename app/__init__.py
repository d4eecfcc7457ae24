"""kg-server: a GraphQL knowledge-graph server."""

__version__ = "0.1.0"
