"""The API's documents as pydantic models: they write the OpenAPI schema at /docs and check what goes out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_an_image, url_forbidden, too_large.")
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class LabelScoreOut(BaseModel):
    label: str
    score: float


class ColorOut(BaseModel):
    name: str = Field(description="Fine colour name (navy, olive, cream...).")
    family: str | None = Field(default=None, description="One of the 12 colour families (absent in older analyses).")
    fraction: float = Field(description="Share of the garment's pixels, 0..1.")
    rgb: list[int]
    hex: str


class SimilarOut(BaseModel):
    id: int
    score: float = Field(description="Cosine similarity, higher is closer.")
    image: str
    sha256: str | None = Field(default=None, description="The item's image hash (absent in older analyses).")
    attributes: dict[str, str]


class DisputedOut(BaseModel):
    model: str = Field(description="The attribute model's folder name.")
    task: str
    label: str = Field(description="The model's own best label, which does not fit the garment's kind.")
    score: float


class GarmentOut(BaseModel):
    label: str
    score: float
    box: list[float] = Field(description="x1, y1, x2, y2 in the photo's pixels.")
    whole_image: bool = Field(description="Nothing was detected: the photo was analysed as one item.")
    source: str = Field(default="detector", description="Who found it: detector, parser, or classifier (a whole photo).")
    polygons: list[list[float]] = Field(default_factory=list, description="The garment's own pixels as simplified "
                                        "polygons [x1, y1, x2, y2, ...] in the photo's pixels (COCO style).")
    area: int | None = Field(default=None, description="The mask's pixel count (None without a parser).")
    attributes: dict[str, list[LabelScoreOut]]
    colors: list[ColorOut]
    color_source: str = Field(default="box", description="mask: colours of the garment's own pixels; box or image "
                              "where it had none.")
    disputed: list[DisputedOut] = Field(default_factory=list, description="What a model said that does not fit "
                                        "the garment's kind, and was left out of its attributes.")
    similar: list[SimilarOut]


class AnalysisOut(BaseModel):
    id: int
    sha256: str
    source: str
    created_at: datetime
    width: int
    height: int
    items: list[GarmentOut]
    models: dict[str, dict]
    timings_ms: dict[str, float]


class AnalysisPage(BaseModel):
    items: list[AnalysisOut]
    total: int
    limit: int
    offset: int


class AnalyzeUrl(BaseModel):
    url: str = Field(max_length=2048, description="An http(s) URL of a photo.")


class ItemOut(BaseModel):
    id: int
    image: str = Field(description="The path or URL the item was added from, or upload:<file name>.")
    sha256: str
    attributes: dict[str, str] = Field(description="Given attributes over predicted ones.")
    given: dict[str, str]
    predicted: dict[str, dict]
    colors: list[dict]


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int
    limit: int
    offset: int


class AddItemUrl(BaseModel):
    url: str = Field(max_length=2048)
    attributes: dict[str, str | int | float] = Field(default_factory=dict)


class HitOut(BaseModel):
    id: int
    image: str
    sha256: str
    score: float
    attributes: dict[str, str]
    colors: list[str]


class FacetValue(BaseModel):
    value: str
    count: int


class FacetsOut(BaseModel):
    facets: dict[str, list[FacetValue]]


class SearchRequest(BaseModel):
    item_id: int | None = Field(default=None, description="Search with a catalogue item's own embedding.")
    url: str | None = Field(default=None, max_length=2048, description="Or with a photo fetched from this URL.")
    text: str | None = Field(default=None, max_length=500, description="Or by words, e.g. 'navy check shirt men' "
                                                                       "(when the service has a text model).")
    top_k: int = Field(default=10, ge=1, le=100)
    filters: dict[str, str | list[str]] = Field(default_factory=dict,
                                                description='Every key must match, any of its values: {"category": "dress", "color": ["red", "pink"]}.')


class SearchOut(BaseModel):
    results: list[HitOut]
    unknown_words: list[str] | None = Field(default=None, description="A text search's words the model never saw "
                                                                      "(left out of the search).")


class HealthOut(BaseModel):
    status: str
    items: int
    analyses: int
    database: str
    revision: int  # the store's: bumped by every change, through any replica
    index_revision: int  # what this replica's search index has caught up to (-1: not loaded yet)
    token_required: bool  # whether the other routes need "Authorization: Bearer <token>"


class ReadyOut(BaseModel):
    status: str
    models: bool
    database: bool
