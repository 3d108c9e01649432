"""Request and response bodies of the REST API (also its OpenAPI documentation)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(
        min_length=1, description="raw input rows: column name -> value; extra columns ignored"
    )
    model_id: str | None = Field(default=None, description="e.g. xgb_credit_v1; wins over dataset")
    dataset: str | None = Field(default=None, description="use this dataset's champion model")


class RowPrediction(BaseModel):
    prediction: str = Field(description="predicted class")
    probabilities: dict[str, float] = Field(description="probability of each class")


class PredictResponse(BaseModel):
    model_id: str
    dataset: str
    classes: list[str] = Field(description="(negative, positive)")
    threshold: float = Field(description="the positive class is predicted from this probability")
    n_rows: int
    predictions: list[RowPrediction]


class Evaluation(BaseModel):
    target: str
    n_labelled: int = Field(description="rows whose target is known (the metrics use these)")
    metrics: dict[str, float] | None
    note: str | None = None


class ValidateResponse(PredictResponse):
    evaluation: Evaluation | None = Field(
        description="test metrics on the file's target column; null when it has none"
    )


class ErrorResponse(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        404: "unknown model id or dataset",
        408: "the body was not sent within SERVING_BODY_TIMEOUT seconds",
        409: "the dataset has no champion (its leaderboard promoted no model; the reason is "
        "in the message): give a model_id",
        413: "too many rows or too large a body",
        422: "rows do not match the model's schema (the message names column and row)",
        503: "no model loaded, or busy (SERVING_MAX_INFLIGHT_MB; retry after Retry-After)",
    }.items()
}
