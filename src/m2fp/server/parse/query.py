"""The query string of ``POST /api/v1/parse``, validated before the body is read."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from m2fp.defaults import DEFAULT_ALPHA
from m2fp.labels import CIHP_CLASSES, CIHP_PALETTE
from m2fp.server.parse.mask_query import MaskQuery
from m2fp.visualization import check_alpha

# classes a mask can be asked for: the label-map classes (Background .. Right-shoe)
MASK_CLASSES = CIHP_CLASSES[: len(CIHP_PALETTE)]


class ParseQuery(MaskQuery):
    """``classes=Face,Hair`` (CIHP names, case-sensitive), ``alpha`` overlay opacity 0..1,
    ``visualize`` whether to include the overlay PNG in the JSON answer; the downstream
    outputs (masks, agnostic, label_set, person, encoding...) are ``MaskQuery``'s."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    classes: str = Field(
        "",
        max_length=400,
        description="Comma-separated CIHP class names whose 1-bit masks to return.",
    )
    alpha: Annotated[float, AfterValidator(check_alpha)] = Field(
        DEFAULT_ALPHA, description="Opacity of the class colours over the photo, 0 to 1."
    )
    visualize: bool = Field(True, description="Include the overlay PNG in the JSON answer.")

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if any(name not in MASK_CLASSES for name in names):
            raise ValueError("unknown class name")
        return ",".join(dict.fromkeys(names))

    @property
    def class_names(self) -> tuple[str, ...]:
        """The requested mask classes, duplicates removed, in the order given."""
        return tuple(self.classes.split(",")) if self.classes else ()
