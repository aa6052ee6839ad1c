"""The query string of ``POST /api/v1/parse``, validated before the body is read."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from m2fp.defaults import DEFAULT_ALPHA
from m2fp.labels import LabelSet
from m2fp.results.visualization import check_alpha
from m2fp.server.parse.mask_query import MaskQuery


class ParseQuery(MaskQuery):
    """``classes=Face,Hair`` (names of the loaded model's label-map classes, case-sensitive,
    checked by ``check_classes``), ``alpha`` overlay opacity 0..1, ``visualize`` whether to
    include the overlay PNG in the JSON answer; the downstream outputs (masks, agnostic,
    label_set, person, encoding...) are ``MaskQuery``'s, checked by ``check_fits_model``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    classes: str = Field(
        "",
        max_length=400,
        description=(
            "Comma-separated class names whose 1-bit masks to return: those of the loaded "
            "model's label set (GET /api/v1/classes)."
        ),
    )
    alpha: Annotated[float, AfterValidator(check_alpha)] = Field(
        DEFAULT_ALPHA, description="Opacity of the class colours over the photo, 0 to 1."
    )
    visualize: bool = Field(True, description="Include the overlay PNG in the JSON answer.")

    @field_validator("classes")
    @classmethod
    def _class_list(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        return ",".join(dict.fromkeys(names))

    @property
    def class_names(self) -> tuple[str, ...]:
        """The requested mask classes, duplicates removed, in the order given."""
        return tuple(self.classes.split(",")) if self.classes else ()

    def check_classes(self, label_set: LabelSet) -> None:
        """Raise ValueError unless every requested class is one ``label_set`` paints (the
        loaded model's: CIHP or LIP names, e.g. "Torso-skin" or "Jumpsuits")."""
        if any(name not in label_set.names for name in self.class_names):
            raise ValueError("unknown class name")
