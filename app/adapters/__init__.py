"""Adapters: one module per technology and role, each implementing one port."""
