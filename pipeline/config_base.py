"""The parts of the configuration that rules build on: the strict model base, zones, façades,
schedules and ``RuleBase``, which every rule's own configuration model extends.

Each rule's model lives in its module (``pipeline.rules.<rule>``) and is listed in
``pipeline.rules.registry``; ``pipeline.config`` assembles cameras and the application from
them. Nothing here imports a rule, so rule modules can import this one freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def unpaired_surrogate(value: Any) -> bool:
    """True if a string anywhere in ``value`` cannot be written as UTF-8 (a lone surrogate
    that JSON's ``\\ud800`` escape lets through): it would fail later, when the file is
    written or the report hashed, far from the field that caused it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, Mapping):
        return any(unpaired_surrogate(k) or unpaired_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(unpaired_surrogate(v) for v in value)
    return False


class Base(BaseModel):
    # NaN and infinity are refused everywhere: "inf" seconds of cooldown or NaN days of
    # retention pass every ``gt``/``le`` bound in spirit only (NaN compares false).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            bad = sorted(str(k) for k, v in data.items() if unpaired_surrogate(v))
            if bad:
                raise ValueError(f"{', '.join(bad)}: not valid Unicode (unpaired surrogate)")
        return data


# Relative (0-1) image coordinates: numbers only (a string or a boolean is refused, not
# converted, so that what is saved is what was validated).
Coord = Annotated[float, Field(strict=True)]
Point = tuple[Coord, Coord]
PositiveMetres = Annotated[float, Field(gt=0.0, le=1000.0)]
# Enough for any hand-drawn outline; a 200k-point polygon slows every frame's zone test.
MAX_POLYGON_POINTS = 256


class ZoneKind(StrEnum):
    NO_PARKING = "no_parking"
    FIRE_LANE = "fire_lane"
    WALKWAY = "walkway"
    ROADWAY = "roadway"
    SHOP_FRONT = "shop_front"
    PERMITTED_STALL = "permitted_stall"
    BIN_AREA = "bin_area"
    LITTER_AREA = "litter_area"  # ground where rubbish gets dumped without a container
    FACADE = "facade"


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleWindow(Base):
    """A weekly window during which a rule is enforced. ``end <= start`` spans midnight."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: time = time(0, 0)
    end: time = time(0, 0)


class ZoneConfig(Base):
    id: str = Field(pattern=ID_PATTERN)
    kind: ZoneKind
    name: str | None = Field(default=None, max_length=100)
    # Relative (0-1) image coordinates, clockwise or not; survives a change of resolution.
    polygon: list[Point] = Field(min_length=3, max_length=MAX_POLYGON_POINTS)
    # bin_area only: two points along the bin's rim (opening). Garbage above this line is piled
    # higher than the bin holds; below it is the bin body and the ground around it.
    rim: list[Point] | None = Field(default=None, min_length=2, max_length=2)
    # A 4-corner zone on flat ground: its real width (first edge, corner 1 → 2) and length
    # (second edge, corner 2 → 3) in metres. Calibrates the ground plane: parking then measures
    # the footprint of objects that no detector class names (pipeline.rules.ground).
    size_m: tuple[PositiveMetres, PositiveMetres] | None = None

    @model_validator(mode="after")
    def _rim(self) -> ZoneConfig:
        if self.rim is not None and self.kind != ZoneKind.BIN_AREA:
            raise ValueError("rim is only for bin_area zones")
        if self.size_m is not None and len(self.polygon) != 4:
            raise ValueError(
                f"size_m needs a polygon of exactly 4 corners (this one has {len(self.polygon)})"
            )
        if self.rim is not None and any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in self.rim):
            raise ValueError("rim points must be relative image coordinates (0-1)")
        return self

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        import shapely  # local: shapely is an adapter detail of zones

        bad = [i for i, (x, y) in enumerate(v) if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0)]
        if bad:
            raise ValueError(
                f"points {bad} are outside 0-1; polygons use relative image coordinates"
            )
        poly = shapely.Polygon(v)
        if not poly.is_valid:
            raise ValueError(
                f"polygon is not simple ({shapely.is_valid_reason(poly)}); its edges must not cross"
            )
        if poly.area < 1e-5:
            raise ValueError("polygon has (almost) no area")
        return v


class FacadeConfig(Base):
    """A calibrated façade (building / unit) for 高空抛物: where windows and floors are.

    ``corners`` are the image corners (relative 0-1; top-left, top-right, bottom-right,
    bottom-left) of the grid spanning from the bottom edge of ``bottom_floor`` to the top edge of
    ``top_floor`` and across every window column in ``columns`` (left to right).
    """

    id: str = Field(pattern=ID_PATTERN)
    building: str = Field(min_length=1, max_length=32)
    unit: str | None = Field(default=None, max_length=32)
    zone: str  # id of a zone of kind "facade": where falling objects are searched for
    corners: list[Point] = Field(min_length=4, max_length=4)
    bottom_floor: int = Field(default=1, ge=-5, le=200)
    top_floor: int = Field(ge=-5, le=200)
    columns: list[str] = Field(min_length=1, max_length=64)
    floor_height_m: float = Field(default=2.9, gt=1.5, le=10.0)
    column_width_m: float = Field(default=3.0, gt=0.3, le=30.0)
    # The lens's horizontal field of view in degrees (the camera's data sheet), where known.
    # A grid seen nearly level fits lenses from wide to tele about equally well once its
    # corners are a few pixels off (a camera 30 m away placed anywhere from 18 to 57 m), and
    # the 3-D fit needs the distance; the lens fixes it.
    hfov_deg: float | None = Field(default=None, ge=10.0, le=130.0)
    # Pixel size of the frames the corners were clicked on: the camera solved from the
    # corners (``gridsight check``) needs the image's aspect ratio. At run time the analyzer
    # uses the stream's own size.
    image_size: tuple[int, int] = (1920, 1080)

    @model_validator(mode="after")
    def _grid(self) -> FacadeConfig:
        import shapely

        if self.top_floor < self.bottom_floor:
            raise ValueError(
                f"top_floor {self.top_floor} is below bottom_floor {self.bottom_floor}"
            )
        if any(not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) for x, y in self.corners):
            raise ValueError("corners must be relative image coordinates (0-1)")
        quad = shapely.Polygon(self.corners)
        if not quad.is_valid or abs(quad.area - quad.convex_hull.area) > 1e-9 or quad.area < 1e-4:
            raise ValueError(
                "corners must form a convex quadrilateral in the order top-left, top-right, "
                "bottom-right, bottom-left"
            )
        (tlx, tly), (trx, _), _, (_, bly) = self.corners
        if not (tlx < trx and tly < bly):
            raise ValueError(
                "corners are not in the order top-left, top-right, bottom-right, bottom-left"
            )
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("column labels must be unique")
        if not all(16 <= v <= 16384 for v in self.image_size):
            raise ValueError(f"image_size {self.image_size} is not a frame size in pixels")
        return self


def whole_step(scale: float) -> int:
    """n for a scale of 1/n; ValueError for any other scale."""
    step = round(1.0 / scale)
    if abs(step * scale - 1.0) > 1e-6:
        raise ValueError(f"must be 1/n for a whole n (1, 0.5, 0.333…, 0.25), got {scale}")
    return step


def resolve_under(base: Path, p: Path) -> Path:
    """``p`` as written in a config file in ``base``: relative paths are the file's."""
    return p if p.is_absolute() else (base / p).resolve()


class RuleBase(Base):
    """What the camera's checks and the pipeline ask of every rule's configuration."""

    # Kinds of zone the rule watches: its ``zones``, or by default every zone of these kinds.
    ZONE_KINDS: ClassVar[frozenset[ZoneKind]] = frozenset()
    # The rule watches calibrated façades (``facades``) rather than zones of its own.
    USES_FACADES: ClassVar[bool] = False
    # The rule follows motion from frame to frame: a camera decoding keyframes only is blind
    # to it.
    NEEDS_EVERY_FRAME: ClassVar[bool] = False

    id: str

    def zone_ids(self) -> list[str] | None:
        """The zones named in the rule (None: every zone of its kinds)."""
        return None

    def facade_ids(self) -> list[str] | None:
        """The façades named in the rule (None: every façade of the camera)."""
        return None

    def shared_models(self) -> frozenset[str]:
        """Models shared across cameras that this rule wants loaded ("bins_classifier",
        "plates"); see ``pipeline.rules.camera.load_shared_models``."""
        return frozenset()

    def with_paths_under(self, base: Path) -> Self:  # noqa: ARG002 (no paths: nothing to do)
        """The rule with its file paths made absolute, relative to ``base`` (the directory of
        the config file)."""
        return self
