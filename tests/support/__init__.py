"""Helpers shared by the test suites: a live server, GraphQL and WebSocket clients."""
