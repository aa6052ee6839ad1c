"""The query parameters of ``POST /api/v1/parse`` that ask for downstream outputs: grouped
masks, try-on agnostic masks, another label set, one person, RLE. ``ParseQuery`` inherits
them; each is checked by the rule in ``m2fp.outputs.mask_rules`` (unknown values are 400 with
the error contract before the body is read), and ``check_fits_model`` then checks them
against the label set of the loaded model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_rules import (
    AGNOSTIC_KINDS,
    GROUPS,
    KEEP_ALL,
    KEEP_PARTS,
    MAX_RADIUS,
    PersonSpec,
    parse_keep,
    parse_kinds,
    parse_person,
    parse_specs,
)
from m2fp.outputs.requested import OutputRequest
from m2fp.server.errors import ApiError, invalid_query

if TYPE_CHECKING:
    from m2fp.predictor import HumanParser

# the label sets the outputs can make, as the query's type: built from OUTPUT_LABEL_SETS so
# that a new label set reaches the query, its validation and the schema at once
LabelSetName = Literal[tuple(OUTPUT_LABEL_SETS)]  # type: ignore[valid-type]


class MaskQuery(BaseModel):
    """Downstream outputs; all of them are absent from the answer unless asked for."""

    masks: str = Field(
        "",
        max_length=400,
        description=(
            "Comma-separated masks: groups ("
            + ", ".join(GROUPS)
            + "), class names of the model's label set, or unions joined with '+'."
        ),
    )
    agnostic: str = Field(
        "",
        max_length=100,
        description="Comma-separated try-on agnostic masks: " + ", ".join(AGNOSTIC_KINDS) + ".",
    )
    label_set: LabelSetName | None = Field(
        None, description="Write label_map_png in this label set (default: the model's)."
    )
    person: str | None = Field(
        None,
        max_length=8,
        description="Restrict masks to one person: 'main' (largest area) or an index into "
        "persons (0 is the first).",
    )
    crop: bool = Field(False, description="Cut masks to the person's box (needs person).")
    invert: bool = Field(False, description="Invert the grouped masks.")
    dilate: int | None = Field(
        None,
        ge=0,
        le=MAX_RADIUS,
        description="Grow masks by this many pixels (a disk). Default: 0 for grouped masks; "
        "for agnostic masks the longer side of the person's box (or image) / 50.",
    )
    feather: int = Field(
        0, ge=0, le=MAX_RADIUS, description="Soften grouped masks' edges (8-bit PNG, not RLE)."
    )
    keep: str = Field(
        ",".join(KEEP_ALL),
        max_length=60,
        description="Parts agnostic masks never cover: " + ", ".join(KEEP_PARTS) + ", or none.",
    )
    grey: bool = Field(False, description="Agnostic masks as 127 inside, 0 outside (8-bit PNG).")
    encoding: Literal["png", "rle"] = Field(
        "png", description="Masks as base64 PNGs or COCO RLE ({size: [h, w], counts})."
    )

    @field_validator("masks")
    @classmethod
    def _known_masks(cls, value: str) -> str:
        return ",".join(parse_specs(value))

    @field_validator("agnostic")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        return ",".join(parse_kinds(value))

    @field_validator("person")
    @classmethod
    def _known_person(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_person(value))

    @field_validator("crop")
    @classmethod
    def _crop_needs_a_person(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("person") is None:
            raise ValueError("crop needs a person")
        return value

    @field_validator("keep")
    @classmethod
    def _known_parts(cls, value: str) -> str:
        parts = parse_keep(value)
        return ",".join(parts) if parts else "none"

    @field_validator("encoding")
    @classmethod
    def _rle_is_binary(cls, value: str, info: ValidationInfo) -> str:
        if value == "rle" and (info.data.get("feather") or info.data.get("grey")):
            raise ValueError("RLE holds binary masks only")
        return value

    @property
    def mask_specs(self) -> tuple[str, ...]:
        return tuple(self.masks.split(",")) if self.masks else ()

    @property
    def agnostic_kinds(self) -> tuple[str, ...]:
        return tuple(self.agnostic.split(",")) if self.agnostic else ()

    @property
    def person_spec(self) -> PersonSpec:
        return None if self.person is None else parse_person(self.person)

    def output_request(self) -> OutputRequest:
        """What these parameters ask for (valid: each field was checked above)."""
        return OutputRequest.build(
            specs=self.mask_specs,
            kinds=self.agnostic_kinds,
            person=self.person_spec,
            crop=self.crop,
            invert=self.invert,
            dilate=self.dilate,
            feather=self.feather,
            keep=parse_keep(self.keep),
            grey=self.grey,
            label_set=self.label_set,
            encoding=self.encoding,
        )


def check_fits_model(query: MaskQuery, parser: HumanParser) -> None:
    """Refuse what the loaded model's label set cannot make (a class it does not have, LIP's
    skin or ATR map), before the upload is read.

    Raises:
        ApiError: ``bad_request`` naming the parameter (never its value).
    """
    request = query.output_request()
    if not (request.specs or request.label_set):
        return
    labels = parser.label_set
    try:
        OutputRequest(specs=request.specs).check_for(labels)
    except OutputRequestError:
        raise invalid_query("masks") from None
    try:
        OutputRequest(label_set=request.label_set).check_for(labels)
    except OutputRequestError:
        raise ApiError(
            "bad_request",
            message="This model's label set cannot be written in the label_set asked for.",
        ) from None
