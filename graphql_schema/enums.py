"""GraphQL enums: the domain's own enums, registered with Strawberry so the names
cannot drift."""

from __future__ import annotations

import strawberry

from app.domain import models
from app.services import search

strawberry.enum(models.JobStatus, name="JobStatus")
strawberry.enum(models.Direction, name="Direction")
strawberry.enum(search.SearchMode, name="SearchMode")
strawberry.enum(models.AskMode, name="AskMode")

JobStatus = models.JobStatus
Direction = models.Direction
SearchMode = search.SearchMode
AskMode = models.AskMode
