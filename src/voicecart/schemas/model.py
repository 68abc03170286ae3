"""Metadata of a versioned model bundle (written as metadata.json by the registry)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DataWindow(BaseModel):
    start: datetime
    end: datetime


class ModelMetadata(BaseModel):
    name: str
    version: str
    created_at: datetime
    metrics: dict[str, float] = Field(default_factory=dict)
    data_window: DataWindow | None = None
    feature_names: list[str] = Field(default_factory=list)
    feature_schema_hash: str
    parent_version: str | None = None
    git_commit: str | None = None
    extra: dict[str, str | float | int | bool | None] = Field(default_factory=dict)
