"""The interfaces the core needs from outside: role-named, batch-first Protocols."""
