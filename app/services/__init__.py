"""Use cases the API calls. Services speak ports and domain types only."""
