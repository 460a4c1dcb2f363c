"""A falling object's trajectory in three dimensions, fitted through the solved camera.

The object is a ballistic body with linear drag released near the façade: unknown release time,
position and velocity (outward, sideways, vertical), gravity ``k·g`` (``k`` ≈ 1; it
absorbs the calibration's scale error) and a drag rate ``β`` (terminal speed ``k·g/β``). Its
positions are projected through the camera of ``pipeline.rules.camera_model`` and compared with the
track in *pixels*, so perspective is part of the model instead of a distortion of it: an
object thrown outward towards a camera that looks up speeds up and drifts sideways in the image
although it falls exactly as physics says.

Depth along the viewing ray is the weakly observed direction; gravity's known size fixes it
(a nearer object falls more pixels per second), helped by weak priors that the object was let
go near the façade at a speed a hand gives. Closed form (linear drag); a fit over ≤ 24 points
costs tens of milliseconds, so it runs only on tracks that already passed the cheap tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from pipeline.rules.camera_model import CameraFit

G = 9.81
# The model is anchored at the release: time t_r (≤ 0, before the first sighting), point
# (x_r, d_r, z_r) near the façade, velocity v_r a hand can give, gravity k·g and drag rate β.
# Depth along the viewing ray is what one camera sees least; these priors (standard
# deviations) say what a throw from a window or balcony looks like, and gravity's known size
# does the rest. Fits that need implausible values pay for them in the residual.
_NAMES = ("t_r", "x_r", "d_r", "z_r", "vx", "vd", "vz", "k", "beta")
_PRIOR_MEAN = np.array([-0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
_PRIOR_SIGMA = np.array([1.0, np.inf, 1.0, np.inf, 2.0, 2.5, 2.5, 0.2, 2.0])
# A toss instead of a drop: let go half a metre out at 1.5 m/s outward. Seen from below, the
# outward distance lies along a viewing ray that climbs towards the wall, so a release put
# nearer the wall is put higher: with the drop prior alone every floor error on the 3-D
# benchmark's tower view was upward (1-3 floors, all objects thrown outward); with the toss
# prior alone drops came a floor too low.
# The origin's floors are reported from both (``pipeline.rules.throwing``).
TOSS_PRIOR_MEAN = np.array([-0.3, 0.0, 0.5, 0.0, 0.0, 1.5, 0.0, 1.0, 0.0])
_PRIORS = np.flatnonzero(np.isfinite(_PRIOR_SIGMA))
_MAX_POINTS = 24
# Blob centroids have heavy tails: now and then a blob merges with the difference image's
# ghost of the object or splits off its motion-blur streak (several pixels off, more at a
# camera's 384 kbit/s). Residuals beyond this many sigmas count linearly (soft L1), and the
# fit's error is the rms over its best _INLIER_SHARE of points.
_ROBUST_SCALE = 2.5
_INLIER_SHARE = 0.85
_LOWER = np.array([-3.0, -np.inf, -1.0, -np.inf, -8.0, -2.0, -6.0, 0.3, 0.0])
_UPPER = np.array([0.0, np.inf, 4.0, np.inf, 8.0, 8.0, 8.0, 2.5, 12.0])


@dataclass(frozen=True, slots=True)
class Ballistic:
    """A fitted fall. Times are seconds from the track's first point of the fall."""

    params: NDArray[np.float64]  # see _NAMES
    rms_px: float  # over the best _INLIER_SHARE of the points
    max_px: float
    rms_all_px: float  # over every point
    t_end: float
    cov: NDArray[np.float64] | None  # of params, scaled by the residual variance
    prior_cost: float  # sum of squared prior deviations (σ units): how much was assumed
    cost: float  # the fit's negative log-likelihood (robust residuals and priors)

    @property
    def release_time(self) -> float:
        return float(self.params[0])

    @property
    def release_point(self) -> NDArray[np.float64]:
        return np.asarray(self.params[1:4], np.float64)

    @property
    def release_velocity(self) -> NDArray[np.float64]:
        return np.asarray(self.params[4:7], np.float64)

    def position(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return _position(self.params, np.asarray(t, np.float64))

    def velocity(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return _velocity(self.params, np.asarray(t, np.float64))

    def mean_accel(self) -> float:
        """Average downward acceleration over the observed fall (m/s²)."""
        v = self.velocity(np.array([0.0, self.t_end]))
        return float((v[0, 2] - v[1, 2]) / max(self.t_end, 1e-3))

    def drop(self) -> float:
        """Height lost from the release to the last sighting (m)."""
        return float(self.release_point[2] - self.position(np.array([self.t_end]))[0, 2])

    def seen_drop(self) -> float:
        p = self.position(np.array([0.0, self.t_end]))
        return float(p[0, 2] - p[1, 2])

    def speed_at(self, t: float) -> float:
        return float(np.linalg.norm(self.velocity(np.array([t]))[0]))

    def sigma(self, i: int) -> float:
        """Standard error of parameter ``i`` from the fit (0 when unknown)."""
        return 0.0 if self.cov is None else math.sqrt(max(float(self.cov[i, i]), 0.0))


def _flight(p: NDArray[np.float64], t: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """(τ, e, s): time since release, e^{-βτ}, and (1 − e)/β (→ τ as β → 0)."""
    tau = np.maximum(t - p[0], 0.0)
    b = p[8]
    if b < 1e-6:
        return tau, np.ones_like(tau), tau
    e = np.exp(-b * tau)
    return tau, e, (1.0 - e) / b


def _position(p: NDArray[np.float64], t: NDArray[np.float64]) -> NDArray[np.float64]:
    tau, _, s = _flight(p, t)
    k, b = p[7] * G, p[8]
    out = p[1:4][None, :] + p[4:7][None, :] * s[:, None]
    # gravity's part: −k·(τ − s)/β, or −k·τ²/2 in the limit β → 0
    out[:, 2] += -0.5 * k * tau * tau if b < 1e-6 else -k * (tau - s) / b
    return np.asarray(out)


def _positions(ps: NDArray[np.float64], t: NDArray[np.float64]) -> NDArray[np.float64]:
    """``_position`` of several parameter vectors at once: (m, 9), (n,) → (m, n, 3), the same
    arithmetic element by element (the numerical Jacobian's nine steps in one evaluation)."""
    tau = np.maximum(t[None, :] - ps[:, :1], 0.0)
    b = ps[:, 8:9]
    small = b < 1e-6
    safe = np.where(small, 1.0, b)
    e = np.exp(-safe * tau)
    s = np.where(small, tau, (1.0 - e) / safe)
    k = ps[:, 7:8] * G
    out = ps[:, None, 1:4] + ps[:, None, 4:7] * s[:, :, None]
    out[:, :, 2] += np.where(small, -0.5 * k * tau * tau, -k * (tau - s) / safe)
    return np.asarray(out)


def _forward_steps(
    x: NDArray[np.float64], lower: NDArray[np.float64], upper: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Forward-difference steps as scipy's '2-point' Jacobian takes them: √ε·max(1, |x|),
    signed as x (+ at 0), turned back where a bound is in the way (scipy also shortens a step
    longer than the room on both sides; no bound interval of this model is that narrow)."""
    sign = (x >= 0).astype(float) * 2 - 1
    h = np.finfo(np.float64).eps ** 0.5 * sign * np.maximum(1.0, np.abs(x))
    h[(x + h < lower) | (x + h > upper)] *= -1
    return h


def _velocity(p: NDArray[np.float64], t: NDArray[np.float64]) -> NDArray[np.float64]:
    _, e, s = _flight(p, t)
    out = p[4:7][None, :] * e[:, None]
    out[:, 2] += -p[7] * G * s
    return np.asarray(out)


@dataclass(frozen=True, slots=True)
class _Problem:
    """The fit's residuals (pixels in units of σ, then the priors) and their Jacobian."""

    t: NDArray[np.float64]
    obs: NDArray[np.float64]  # (n, 2) px
    camera: CameraFit
    sigma_px: float
    prior_mean: NDArray[np.float64]

    def batch(self, ps: NDArray[np.float64]) -> NDArray[np.float64]:
        """The residuals of each row of parameters, (m, 9) → (m, 2n + priors)."""
        world = _positions(ps, self.t).reshape(-1, 3)
        proj = self.camera.project(world).reshape(len(ps), -1, 2)
        r = ((proj - self.obs) / self.sigma_px).reshape(len(ps), -1)
        r[~np.isfinite(r)] = 1e3  # behind the camera: hopeless
        prior = (ps[:, _PRIORS] - self.prior_mean[_PRIORS]) / _PRIOR_SIGMA[_PRIORS]
        return np.concatenate([r, prior], axis=1)

    def residuals(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.batch(p[None, :])[0])

    def jacobian(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """scipy's own '2-point' Jacobian, the same numbers, but its nine evaluations of the
        model in one: they were half of each fit's time, and a fit runs for every candidate
        track among trees (``benchmarks/throwing_cost.py``)."""
        h = _forward_steps(p, _LOWER, _UPPER)
        steps = np.tile(p, (len(p), 1))
        steps[np.diag_indices(len(p))] += h
        rows = self.batch(np.concatenate([p[None, :], steps]))
        jac_t = (rows[1:] - rows[0]) / ((p + h) - p)[:, None]
        return np.asarray(jac_t.T)


def fit_ballistic(
    t: NDArray[np.float64],
    xy_px: NDArray[np.float64],
    camera: CameraFit,
    sigma_px: float,
    good_px: float = 0.0,
    prior_mean: NDArray[np.float64] = _PRIOR_MEAN,
) -> Ballistic:
    """Fit the model to a track: times (s, from its first point) and image points (px). A
    first fit within ``good_px`` rms is kept without trying the second start."""
    t_all = np.asarray(t, np.float64)
    obs_all = np.asarray(xy_px, np.float64).reshape(-1, 2)
    # ≤ _MAX_POINTS evenly spaced points carry the shape; the error is measured on all
    keep = np.unique(np.linspace(0, len(t_all) - 1, min(len(t_all), _MAX_POINTS)).round())
    t, obs = t_all[keep.astype(int)], obs_all[keep.astype(int)]
    first = camera.on_facade(obs[:1])[0]

    problem = _Problem(t, obs, camera, sigma_px, prior_mean)
    n_res = 2 * len(t)
    best = None
    # Two starts, in the plane and thrown outward: depth is what the data constrain least.
    for vd in (0.5, 3.5):
        x0 = np.array([-0.2, first[0], 0.1, first[2] + 0.2, 0.0, vd, 0.0, 1.0, 0.1])
        x0 = np.clip(x0, _LOWER + 1e-6, _UPPER - 1e-6)
        res = least_squares(
            problem.residuals, x0, jac=problem.jacobian, bounds=(_LOWER, _UPPER), method="trf",
            x_scale="jac",
            loss="soft_l1", f_scale=_ROBUST_SCALE,
        )  # fmt: skip
        if best is None or res.cost < best.cost:
            best = res
        n = len(t)
        if _trimmed_rms(np.hypot(*best.fun[: 2 * n].reshape(-1, 2).T) * sigma_px) <= good_px:
            break
    assert best is not None
    p = np.asarray(best.x, np.float64)
    err = np.linalg.norm(camera.project(_position(p, t_all)) - obs_all, axis=1)
    err = np.where(np.isfinite(err), err, 1e3)
    cov = None
    jac = np.asarray(best.jac, np.float64)
    try:
        s2 = float(np.sum(best.fun[:n_res] ** 2)) / max(n_res - len(p), 1)
        cov = np.asarray(np.linalg.pinv(jac.T @ jac) * max(s2, 1.0), np.float64)
    except np.linalg.LinAlgError:
        cov = None
    return Ballistic(
        params=p,
        rms_px=_trimmed_rms(err),
        max_px=float(err.max()),
        rms_all_px=float(np.sqrt(np.mean(err**2))),
        t_end=float(t_all[-1]),
        cov=cov,
        prior_cost=float(np.sum(best.fun[n_res:] ** 2)),
        cost=float(best.cost),
    )


def _trimmed_rms(err: NDArray[np.float64]) -> float:
    """Root mean square of the smallest ``_INLIER_SHARE`` of the errors."""
    keep = max(1, math.ceil(_INLIER_SHARE * len(err)))
    return float(np.sqrt(np.mean(np.sort(err)[:keep] ** 2)))
