"""The camera behind a façade calibration: a pinhole camera posed from the clicked grid corners.

A homography from four clicked corners maps *any* quadrilateral onto the façade rectangle, so it
cannot tell an integrator that the corners, the floor count or the column width are wrong: it
simply bends the metres. A real camera is more constrained. With square pixels and the principal
point at the image centre, a pinhole camera has 7 degrees of freedom (focal length, rotation,
position) against the 8 numbers of four corners, so a grid whose corners and dimensions
disagree fits no camera at all, and the misfit (reprojection error, in pixels) says by how much.
The focal length found must also be one a surveillance lens has (horizontal field of view
10-130°).

With the camera solved, a point of the image is a ray in the world, and a trajectory can be
modelled in three dimensions (``pipeline.rules.trajectory``): an object thrown outward, towards a
camera that looks up, drifts and accelerates sideways in the image although nothing pushes it
sideways, which no model in the façade plane can explain.

World coordinates (metres): ``x`` along the façade to the right (0 at the grid's left edge),
``d`` out of the façade towards the camera's side (0 on the façade plane), ``z`` up (0 at the
grid's bottom edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from pipeline.config_base import FacadeConfig

# A fit is accepted up to this reprojection error: a few pixels of clicking (0.3 % of the
# image diagonal, ≥ 2 px), measured as the root mean square over the four corners.
FIT_RMS_FRACTION = 0.003
FIT_RMS_MIN_PX = 2.0
# Lenses of façade cameras: 2.8-50 mm on 1/2.8"-1/1.8" sensors, horizontal FOV 10-130°.
MIN_HFOV_DEG = 10.0
MAX_HFOV_DEG = 130.0
# A lens's focal length as its data sheet gives it, ± this (natural log: ±8 %): lens tolerance,
# a varifocal set by hand, and the distortion a pinhole model does not have.
LENS_TOLERANCE = 0.08


@dataclass(frozen=True, slots=True)
class CameraFit:
    """A pinhole camera solved from a façade calibration (or the reason none fits)."""

    ok: bool
    reason: str
    width: int
    height: int
    focal_px: float
    rms_px: float  # reprojection error of the four corners
    max_px: float
    rotation: NDArray[np.float64]  # 3×3, world (x, y_cv, z) → camera
    translation: NDArray[np.float64]  # 3
    out_sign: float  # the façade's outward direction along the solver's y axis
    # world (x, d, z) → camera in one product, and the principal point: ``project`` runs tens
    # of thousands of times in each 3-D fit (the ±1 of out_sign moves into the matrix exactly)
    _to_camera: NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _centre_px: NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flip = np.array([1.0, self.out_sign, 1.0])
        object.__setattr__(self, "_to_camera", (self.rotation * flip[None, :]).T)
        object.__setattr__(self, "_centre_px", np.array([self.width / 2.0, self.height / 2.0]))

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.focal_px)))

    @property
    def centre(self) -> NDArray[np.float64]:
        """Camera position in world (x, d, z) metres."""
        c = -self.rotation.T @ self.translation
        return np.array([c[0], self.out_sign * c[1], c[2]])

    @property
    def tilt_deg(self) -> float:
        """How far the optical axis points above the horizon (looking up at the building > 0)."""
        axis = self.rotation.T @ np.array([0.0, 0.0, 1.0])
        return math.degrees(math.asin(float(np.clip(axis[2], -1.0, 1.0))))

    def project(self, xdz: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 3) world points → (N, 2) image pixels (points behind the camera: NaN)."""
        cam = np.asarray(xdz, np.float64).reshape(-1, 3) @ self._to_camera + self.translation
        z = cam[:, 2:3]
        ahead = z > 1e-6
        uv = np.where(ahead, cam[:, :2] / np.where(ahead, z, 1.0), np.nan)
        return np.asarray(uv * self.focal_px + self._centre_px)

    def on_facade(self, xy_px: NDArray[np.float64], d: float = 0.0) -> NDArray[np.float64]:
        """(N, 2) pixels → (N, 3) world points where their rays meet the plane at ``d``."""
        px = np.asarray(xy_px, np.float64).reshape(-1, 2)
        rays_cam = np.concatenate(
            [(px - [self.width / 2.0, self.height / 2.0]) / self.focal_px, np.ones((len(px), 1))],
            axis=1,
        )
        rays = rays_cam @ self.rotation  # camera → world (cv axes): Rᵀ·r, row-wise
        c = -self.rotation.T @ self.translation
        plane_y = self.out_sign * d
        s = (plane_y - c[1]) / np.where(np.abs(rays[:, 1]) > 1e-12, rays[:, 1], 1e-12)
        p = c + s[:, None] * rays
        return np.stack([p[:, 0], self.out_sign * p[:, 1], p[:, 2]], axis=1)


def corner_points(cfg: FacadeConfig, width: int, height: int) -> NDArray[np.float64]:
    return np.array([(x * width, y * height) for x, y in cfg.corners], np.float64)


def facade_size_m(cfg: FacadeConfig) -> tuple[float, float]:
    n_floors = cfg.top_floor - cfg.bottom_floor + 1
    return len(cfg.columns) * cfg.column_width_m, n_floors * cfg.floor_height_m


def solve_camera(
    corners_px: NDArray[np.float64],
    width_m: float,
    height_m: float,
    width: int,
    height: int,
    hfov_deg: float | None = None,
) -> CameraFit:
    """The pinhole camera (square pixels, centred principal point) that best maps the façade
    rectangle ``width_m`` × ``height_m`` onto the four corner pixels (TL, TR, BR, BL); with
    the lens's field of view ``hfov_deg`` known, its focal length within ``LENS_TOLERANCE``."""
    img = np.asarray(corners_px, np.float64).reshape(4, 2)
    obj = np.array(
        [(0.0, 0.0, height_m), (width_m, 0.0, height_m), (width_m, 0.0, 0.0), (0.0, 0.0, 0.0)]
    )

    def pose(f: float) -> tuple[float, float, NDArray[np.float64], NDArray[np.float64]]:
        k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
        _, rvecs, tvecs, _ = cv2.solvePnPGeneric(obj, img, k, None, flags=cv2.SOLVEPNP_IPPE)
        best = (1e9, 1e9, np.eye(3), np.zeros(3))  # no pose at all: a huge, finite misfit
        for rv, tv in zip(rvecs, tvecs, strict=True):
            proj, _ = cv2.projectPoints(obj, rv, tv, k, None)
            err = np.linalg.norm(proj.reshape(-1, 2) - img, axis=1)
            rms = float(np.sqrt(np.mean(err**2)))
            if rms < best[0]:
                rot = np.asarray(cv2.Rodrigues(rv)[0], np.float64)
                best = (rms, float(err.max()), rot, np.asarray(tv, np.float64).reshape(3))
        return best

    def f_of(hfov_deg: float) -> float:
        return width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))

    # The error over log focal length has one broad valley; a coarse scan finds it, a bounded
    # 1-D search refines it.
    if hfov_deg is None:
        logs = np.linspace(math.log(f_of(MAX_HFOV_DEG)), math.log(f_of(MIN_HFOV_DEG)), 60)
    else:
        f_lens = math.log(f_of(hfov_deg))
        logs = np.linspace(f_lens - LENS_TOLERANCE, f_lens + LENS_TOLERANCE, 9)
    errs = [pose(math.exp(v))[0] for v in logs]
    i = int(np.argmin(errs))
    lo, hi = logs[max(0, i - 1)], logs[min(len(logs) - 1, i + 1)]
    res = minimize_scalar(lambda v: pose(math.exp(v))[0], bounds=(lo, hi), method="bounded")
    f = math.exp(float(res.x)) if float(res.fun) < errs[i] else math.exp(float(logs[i]))
    rms, worst, rot, tv = pose(f)
    c = -rot.T @ tv
    out_sign = 1.0 if c[1] >= 0 else -1.0
    limit = max(FIT_RMS_MIN_PX, FIT_RMS_FRACTION * math.hypot(width, height))
    fit = CameraFit(True, "", width, height, f, rms, worst, rot, tv, out_sign)
    if not math.isfinite(rms) or rms > limit:
        lens = "" if hfov_deg is None else f" and a {hfov_deg:g}° lens"
        why = (
            f"no pinhole camera fits the corners with a {width_m:.1f} × {height_m:.1f} m grid"
            f"{lens}: {rms:.1f} px rms reprojection error (limit {limit:.1f} px); check the "
            "corners, the floor count, floor_height_m and column_width_m"
            + ("" if hfov_deg is None else " and hfov_deg")
        )
        return replace(fit, ok=False, reason=why + _recorder_hint(width, height))
    # (a lens given by the integrator is real whatever the corners would rather have)
    at_edge = hfov_deg is None and i in (0, len(logs) - 1) and abs(float(res.x) - logs[i]) < 0.05
    if at_edge:
        why = f"the fit needs a {fit.hfov_deg:.0f}° field of view, no real lens"
        return replace(fit, ok=False, reason=why + _recorder_hint(width, height))
    return fit


# Coded sizes of recorder channels (D1, 4CIF, CIF at 625 and 525 lines) whose samples are
# usually not square.
_RECORDER_SIZES = {(704, 576), (720, 576), (704, 480), (720, 480), (352, 288), (352, 240)}


def _recorder_hint(width: int, height: int) -> str:
    if (width, height) not in _RECORDER_SIZES:
        return ""
    return (
        f"; a {width} × {height} recorder channel often stores non-square pixels without "
        'saying so: if its picture looks squeezed, set the camera\'s display_aspect ("4:3" or '
        '"16:9")'
    )


def camera_for(cfg: FacadeConfig, width: int, height: int) -> CameraFit:
    wm, hm = facade_size_m(cfg)
    return solve_camera(corner_points(cfg, width, height), wm, hm, width, height, cfg.hfov_deg)


def fitting_column_widths(cfg: FacadeConfig, width: int, height: int) -> tuple[float, float] | None:
    """The range of column widths (m) with which the grid fits a camera, the floor height kept:
    what to suggest to an integrator whose grid fits none (widths are rarely measured)."""
    _, hm = facade_size_m(cfg)
    corners = corner_points(cfg, width, height)
    n = len(cfg.columns)
    widths = np.geomspace(0.5, 30.0, 48)
    fits = [
        w for w in widths if solve_camera(corners, n * float(w), hm, width, height, cfg.hfov_deg).ok
    ]
    return (round(float(min(fits)), 1), round(float(max(fits)), 1)) if fits else None


def ground_z(cfg: FacadeConfig) -> float:
    """Height of the ground in world metres: the grid's bottom edge is the bottom of
    ``bottom_floor``, and floor 1 stands on the ground."""
    return -(cfg.bottom_floor - 1) * cfg.floor_height_m


def warnings(cfg: FacadeConfig, fit: CameraFit) -> list[str]:
    """Fits that are possible but unlikely: worth a second look by the integrator."""
    if not fit.ok:
        return []
    out = []
    below = ground_z(cfg) - float(fit.centre[2])
    if below > 3.0:
        out.append(
            f"the camera would stand {below:.0f} m below the ground: is bottom_floor "
            f"{cfg.bottom_floor} the floor at the grid's bottom edge?"
        )
    if fit.tilt_deg < -10.0:
        out.append(f"the camera would look {-fit.tilt_deg:.0f}° down at the façade")
    return out


def describe(fit: CameraFit, given: bool = False) -> str:
    """One line for ``gridsight check`` and the zone editor (``given``: the lens's field of
    view was the integrator's)."""
    if not fit.ok:
        return fit.reason
    c = fit.centre
    return (
        f"camera fits: {fit.rms_px:.1f} px rms ({fit.max_px:.1f} px worst corner), "
        f"field of view {fit.hfov_deg:.0f}°{' (the lens as given)' if given else ''}, "
        f"looking {fit.tilt_deg:+.0f}° above the horizon "
        f"from {c[1]:.0f} m out and {c[2]:+.0f} m relative to the grid's bottom edge"
    )


def fit_summary(cfg: FacadeConfig, width: int, height: int) -> tuple[bool, str]:
    """Whether a real camera can see the façade grid as calibrated, in one line for
    ``gridsight check`` and the zone editor (with the column widths that would fit, or the
    doubts a fit leaves)."""
    fit = camera_for(cfg, width, height)
    head = f"façade {cfg.id} ({width}×{height}): "
    if not fit.ok:
        widths = fitting_column_widths(cfg, width, height)
        hint = (
            f"; with floor_height_m {cfg.floor_height_m} a camera fits column_width_m "
            f"{widths[0]}-{widths[1]}"
            if widths
            else ""
        )
        return False, f"{head}{fit.reason}{hint}; falls are tested on the façade plane only"
    notes = "".join(f"; ⚠ {w}" for w in warnings(cfg, fit))
    return True, f"{head}{describe(fit, cfg.hfov_deg is not None)}{notes}"
