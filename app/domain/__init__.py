"""Plain data of the knowledge graph. Imports nothing of ours."""
