"""Who may call: bearer JWTs, API keys, roles and rate limits."""
