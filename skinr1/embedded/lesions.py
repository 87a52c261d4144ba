"""Procedural dermoscopy-like skin lesion images drawn from a rule's structured features.

Every demo image in the project comes from here. A picture is a function of the lesion's
``Features`` (skinr1/rules.py; vocabulary skinr1/knowledge/features.yaml) plus nuisance variation
(skin tone, outline, rotation, position, size, illumination, hairs, noise, JPEG), so a
diagnosis's rule, its rationale and its picture never disagree.

The consumer is a tiny ViT trained for a minute on a CPU at 112 px (28 px merged tokens), so each
feature gets a strong, large-scale cue: palettes placed in zones, structures drawn at >= 2-3 px at
128 px, and nuisance variation kept moderate so the class cues dominate.

Randomness: the caller's Generator only seeds one child generator per stage and per structure or
surface value, so adding a structure changes only that structure's pixels (the tests rely on it).

Speed (~2-5 ms per 128 px image on one core): float32 maps held channels-first, crisp marks drawn
by PIL's C code, and no per-pixel Python.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from skinr1.rules import Features

MODALITIES = ("dermoscopic", "clinical")
SKIN_TONES = (1, 2, 3, 4, 5, 6)  # Fitzpatrick I-VI

# Background skin as seen through a polarised dermatoscope, Fitzpatrick I (pale) to VI.
_SKIN = {
    1: (241, 212, 194), 2: (228, 186, 158), 3: (204, 156, 120),
    4: (168, 120, 86), 5: (124, 86, 60), 6: (84, 58, 44),
}  # fmt: skip

# Lesion palette at Fitzpatrick II; "skin-coloured" is derived from the background tone.
COLOURS: dict[str, tuple[int, int, int] | None] = {
    "light brown": (178, 122, 76), "dark brown": (100, 58, 34), "black": (36, 27, 27),
    "blue-grey": (94, 106, 132), "blue": (58, 80, 156), "red": (200, 48, 50),
    "pink": (232, 146, 150), "purple": (120, 48, 104), "white": (240, 236, 230),
    "yellow": (232, 200, 104), "skin-coloured": None, "tan": (208, 164, 114),
    "orange": (224, 136, 56),
}  # fmt: skip
# How strongly a colour darkens with the skin tone: melanin sits on top of pigment and blood
# alike, so brown lesions on dark skin stay darker than the skin (ratio ** exponent).
_TONE_EXP = {
    "light brown": 0.85, "dark brown": 0.6, "tan": 0.85, "black": 0.3, "blue-grey": 0.35,
    "blue": 0.35, "red": 0.35, "pink": 0.35, "purple": 0.35, "orange": 0.35, "white": 0.1,
    "yellow": 0.1,
}  # fmt: skip

_SYMMETRY = ("symmetric", "asymmetric")
_BORDER = ("regular", "irregular", "ill-defined")
_ELEVATION = ("flat", "raised", "nodular")
_SIZE_FRAC = {"small": 0.66, "medium": 0.82, "large": 1.0}  # lesion radius / half image
_N_ANG = 256
_ANGLES = np.linspace(0.0, 2 * math.pi, _N_ANG, endpoint=False)

_VESSEL = np.array((206, 28, 40), np.float32)


# --- small numeric helpers ---------------------------------------------------------------------


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    xx.flags.writeable = yy.flags.writeable = False  # shared between calls
    return xx, yy


@lru_cache(maxsize=8)
def _grain(size: int) -> np.ndarray:
    """Sensor noise tile (2x the image; a random window is cut per image). Drawing fresh
    Gaussian noise per image would cost more than the rest of the background."""
    tile = np.random.default_rng(0).standard_normal((3, 2 * size, 2 * size), dtype=np.float32)
    tile.flags.writeable = False
    return tile


def _noise(g: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: a cells x cells random grid upsampled bicubically."""
    small = Image.fromarray(g.random((cells, cells), dtype=np.float32))
    return np.clip(np.asarray(small.resize((size, size), Image.BICUBIC)), 0.0, 1.0)


def skin_rgb(tone: int) -> tuple[int, int, int]:
    """Background skin colour for Fitzpatrick type ``tone`` (1 pale .. 6 dark brown)."""
    if isinstance(tone, bool) or not isinstance(tone, (int, np.integer)) or tone not in _SKIN:
        raise ValueError(f"skin_tone={tone!r}: expected a Fitzpatrick type 1..6")
    return _SKIN[int(tone)]


def colour_rgb(name: str, tone: int = 2) -> tuple[int, int, int]:
    """The RGB a vocabulary colour is painted with on skin of Fitzpatrick type ``tone``."""
    if name not in COLOURS:
        raise ValueError(f"unknown colour {name!r}; features.yaml allows {sorted(COLOURS)}")
    skin = np.array(skin_rgb(tone), np.float32)
    if name == "skin-coloured":
        return tuple(int(v) for v in skin * np.array([0.94, 0.86, 0.86]))
    ratio = skin / np.array(_SKIN[2], np.float32)
    col = np.array(COLOURS[name], np.float32) * ratio ** _TONE_EXP[name]
    return tuple(int(v) for v in np.clip(col, 0, 255))


# --- lesion geometry ---------------------------------------------------------------------------


def _outline(f: Features, g: np.random.Generator) -> np.ndarray:
    """Radius multiplier per angle (area-normalised): ellipse, lobes, notches."""
    a = _ANGLES
    tilt = g.uniform(0, math.pi)
    if f.symmetry == "symmetric":
        b = g.uniform(0.80, 0.95)
        r = 1 / np.sqrt(np.cos(a - tilt) ** 2 + (np.sin(a - tilt) / b) ** 2)
        # A cos(4(a - tilt)) wobble keeps both mirror axes of the ellipse.
        r *= 1 + 0.03 * g.uniform(-1, 1) * np.cos(4 * (a - tilt))
    else:
        b = g.uniform(0.70, 0.92)
        r = 1 / np.sqrt(np.cos(a - tilt) ** 2 + (np.sin(a - tilt) / b) ** 2)
        # Random-phase lobes: low odd harmonics are what break mirror symmetry.
        for k, amp in ((1, 0.12), (2, 0.12), (3, 0.18), (4, 0.09), (5, 0.06)):
            r *= 1 + g.uniform(0.6, 1.0) * amp * np.cos(k * a + g.uniform(0, 2 * math.pi))
    if f.border == "irregular":
        k = np.arange(7, 20)[:, None]
        amp, ph = g.uniform(0.0, 0.03, (13, 1)), g.uniform(0, 2 * math.pi, (13, 1))
        r *= np.prod(1 + amp * np.cos(k * a + ph), axis=0)
        m = int(g.integers(4, 8))  # notches (mostly) and small protrusions
        c, w = g.uniform(0, 2 * math.pi, (m, 1)), g.uniform(0.08, 0.16, (m, 1))
        depth = g.choice([-1.0, -1.0, 1.0], (m, 1)) * g.uniform(0.08, 0.16, (m, 1))
        d = (a - c + math.pi) % (2 * math.pi) - math.pi
        r *= np.prod(1 + depth * np.exp(-((d / w) ** 2)), axis=0)
    return (r / np.sqrt(np.mean(r**2))).astype(np.float32)


class _Lesion:
    """Geometry of one lesion plus the deferred drawing work of its structures."""

    def __init__(self, f: Features, g: np.random.Generator, size: int, modality: str) -> None:
        self.f, self.size, self.s = f, size, size / 128
        half = size / 2
        scale = 1.0 if modality == "dermoscopic" else 0.75
        self.R = half * _SIZE_FRAC[f.size] * scale * g.uniform(0.88, 1.12)
        self.cx = half + g.uniform(-0.08, 0.08) * size
        self.cy = half + g.uniform(-0.08, 0.08) * size
        self.r_tab = _outline(f, g)
        self.phi = g.uniform(0, 2 * math.pi)  # orientation of meshes and parallel patterns
        self.light = g.uniform(-0.3, 0.3) - 0.75 * math.pi  # light from the upper left
        xx, yy = _grid(size)
        self.dx, self.dy = xx - self.cx, yy - self.cy
        rho = np.hypot(self.dx, self.dy)
        # Outline radius at each pixel's angle, linearly interpolated between table entries.
        pos = (np.arctan2(self.dy, self.dx) + math.pi) * (_N_ANG / (2 * math.pi)) + _N_ANG // 2
        base = np.floor(pos)
        t = pos - base
        i0 = base.astype(np.int32)
        rlim = self.R * (self.r_tab[i0 % _N_ANG] * (1 - t) + self.r_tab[(i0 + 1) % _N_ANG] * t)
        self.rn = rho / rlim
        edge = 0.32 * self.R if f.border == "ill-defined" else 0.9 * self.s
        self.alpha = np.clip(0.5 + (rlim - rho) / edge, 0.0, 1.0)
        # Lesion colour layer, channels first: numpy broadcasts a (H, W) mask over (3, H, W)
        # several times faster than over (H, W, 3), whose innermost loop would be 3 long.
        self.rgb = np.zeros((3, size, size), np.float32)
        self.main = np.zeros(3, np.float32)  # the first (dominant) colour
        self.texture = np.zeros((size, size), np.float32)  # fine mottling, set by _paint
        # Opaque regions (veil, white patch, keratin, ulcer) that later meshes and dots avoid.
        self.cover = np.zeros((size, size), np.float32)
        self.inner: list[Callable[[ImageDraw.ImageDraw], None]] = []  # clipped to the lesion
        self.outer: list[Callable[[ImageDraw.ImageDraw], None]] = []  # may cross the border
        self.post: list[Callable[[np.ndarray], None]] = []  # on the final float image

    # points ------------------------------------------------------------------------------------
    def rlim_at(self, theta: np.ndarray) -> np.ndarray:
        idx = (np.mod(theta, 2 * math.pi) * (_N_ANG / (2 * math.pi))).astype(np.int32) % _N_ANG
        return self.R * self.r_tab[idx]

    def rn_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = x - self.cx, y - self.cy
        return np.hypot(dx, dy) / self.rlim_at(np.arctan2(dy, dx))

    def polar(self, theta: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.rlim_at(theta) * frac
        return self.cx + r * np.cos(theta), self.cy + r * np.sin(theta)

    def pts(
        self, g: np.random.Generator, n: int, lo: float = 0.0, hi: float = 0.85,
        around: float | None = None, spread: float = 0.8,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """n points uniform by area between lo and hi of the outline (optionally in a sector)."""
        if around is None:
            theta = g.uniform(0, 2 * math.pi, n)
        else:
            theta = around + g.normal(0, spread, n)
        frac = np.sqrt(g.uniform(lo * lo, hi * hi, n))
        return self.polar(theta, frac)

    def lattice(self, g: np.random.Generator, spacing: float, jitter: float, hex_: bool = True):
        """Jittered (hexagonal) lattice covering the lesion, rotated by phi: X, Y, rn (m x m)."""
        ext = self.R * float(self.r_tab.max()) * 1.1
        m = int(2 * ext / spacing) + 2
        j, i = np.mgrid[0:m, 0:m].astype(np.float32)
        u = (i - (m - 1) / 2) * spacing + (0.5 * spacing * (j % 2) if hex_ else 0)
        v = (j - (m - 1) / 2) * spacing * (0.87 if hex_ else 1.0)
        u = u + g.normal(0, jitter * spacing, u.shape)
        v = v + g.normal(0, jitter * spacing, v.shape)
        c, s = math.cos(self.phi), math.sin(self.phi)
        x, y = self.cx + c * u - s * v, self.cy + s * u + c * v
        return x, y, self.rn_at(x, y)

    def free(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Which points lie outside the opaque regions."""
        xi = np.clip(np.asarray(x).astype(np.int32), 0, self.size - 1)
        yi = np.clip(np.asarray(y).astype(np.int32), 0, self.size - 1)
        return self.cover[yi, xi] < 0.5

    def occlude(self, mask: np.ndarray) -> None:
        np.maximum(self.cover, mask, out=self.cover)

    def pigment(self, k: float, alpha: int) -> tuple[int, int, int, int]:
        """A brown darker than the lesion (so it shows on dark skin too), as RGBA."""
        return _darker(np.minimum(self.main, (150, 95, 60)), k, alpha)

    def vessel(self, alpha: int) -> tuple[int, int, int, int]:
        """Vessel red; on an already red lesion a deeper red, so the vessels still show."""
        reddish = float(np.linalg.norm(self.main - _VESSEL)) < 90
        return _darker(_VESSEL, 0.6 if reddish else 1.0, alpha)

    def px(self, v: float) -> float:
        return v * self.s

    def w(self, v: float) -> int:
        """A line width in px at this image size, never below 1."""
        return max(1, round(v * self.s))

    # colour ------------------------------------------------------------------------------------
    def tint(self, mask: np.ndarray, colour, strength: float = 1.0) -> None:
        col = np.asarray(colour, np.float32)[:3, None, None]
        self.rgb += (col - self.rgb) * (mask * strength)

    def blob(self, g: np.random.Generator, x0: float, y0: float, a: float, b: float,
             rough: float = 0.6, soft: float = 2.5) -> np.ndarray:  # fmt: skip
        """Soft irregular blob in [0, 1] centred on (x0, y0) with semi-axes a, b."""
        xx, yy = _grid(self.size)
        t = g.uniform(0, math.pi)
        c, s = math.cos(t), math.sin(t)
        a, b = float(a), float(b)  # python floats keep the float32 maps float32
        ux, uy = xx - float(x0), yy - float(y0)
        d = ((ux * c + uy * s) / a) ** 2 + ((uy * c - ux * s) / b) ** 2
        n = _noise(g, self.size, 6)
        # Noise roughens only the edge, so the blob never vanishes.
        return np.clip((1.0 - d + rough * (n - 0.5) * 2 * np.minimum(d, 1.0)) * soft, 0.0, 1.0)


def _dots(d: ImageDraw.ImageDraw, xs, ys, rs, fills) -> None:
    rs = np.broadcast_to(rs, np.shape(xs))
    for i, (x, y, r) in enumerate(zip(xs, ys, rs, strict=True)):
        fill = fills[i] if isinstance(fills, list) else fills
        d.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def _polyline(g: np.random.Generator, x: float, y: float, ang: float, steps: int, step: float,
              wiggle: float) -> list[tuple[float, float]]:  # fmt: skip
    pts = [(x, y)]
    for _ in range(steps):
        ang += g.normal(0, wiggle)
        x, y = x + step * math.cos(ang), y + step * math.sin(ang)
        pts.append((x, y))
    return pts


def _darker(c, k: float, alpha: int) -> tuple[int, int, int, int]:
    return (*(int(v * k) for v in c), alpha)


# --- colour zones ------------------------------------------------------------------------------


def _paint(L: _Lesion, g: np.random.Generator, tone: int) -> None:
    """Lesion colour layer: one colour uniform, several in concentric (symmetric) or
    off-centre blotchy (asymmetric) zones; the first colour listed covers the most area.
    No colours at all draws the commonest lesion colour, light brown."""
    names = L.f.colours or ("light brown",)
    cols = np.array([colour_rgb(n, tone) for n in names], np.float32)
    L.main = cols[0]
    n = len(cols)
    if n == 1:
        L.rgb[:] = cols[0][:, None, None]
    else:
        if L.f.symmetry == "symmetric":
            # Rings from the rim (first colour, 60% of the area) to the centre (last colour).
            pos = L.rn + 0.35 * (_noise(g, L.size, 5) - 0.5)
            inner_area = [1.0] + [0.4 * (n - k) / (n - 1) for k in range(1, n + 1)]
            edges = np.sqrt(np.array(inner_area))  # 1 .. 0
            mids = (edges[:-1] + edges[1:]) / 2
            fields = [-((pos - m) ** 2) * 40 for m in mids]
        else:
            base = g.uniform(0, 2 * math.pi)
            fields = []
            for i in range(n):
                nz = _noise(g, L.size, 4)
                if i == 0:
                    fields.append(2.2 * nz + 0.45)
                else:
                    ang = base + 2 * math.pi * (i - 1) / max(1, n - 1) * 0.5
                    proj = (L.dx * math.cos(ang) + L.dy * math.sin(ang)) / L.R
                    fields.append(2.2 * nz + 1.1 * proj)
            fields = [7 * f for f in fields]
        stack = np.stack(fields)
        stack -= stack.max(axis=0)
        w = np.exp(stack)
        w /= w.sum(axis=0)
        L.rgb[:] = np.tensordot(cols.T, w, axes=(1, 0))
    L.texture = _noise(g, L.size, 14)
    L.rgb *= 0.9 + 0.2 * L.texture


# --- structures --------------------------------------------------------------------------------
# Each takes the lesion and its own generator: region effects tint L.rgb now, crisp marks are
# queued on L.inner (clipped to the lesion) or L.outer (may cross the border).


_HEX = np.array([(math.cos(a), math.sin(a)) for a in np.radians(np.arange(30, 390, 60))])


def _honeycomb(L: _Lesion, g, spacing: float, jitter: float, width: tuple[int, int], colours,
               keep: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
               size_var: float = 0.0, drop: float = 0.0) -> None:  # fmt: skip
    """Pigment network: hexagonal cell outlines (lines) round the points of a jittered lattice.
    Neighbouring cells share edges, so a regular lattice gives a clean honeycomb; jitter, cell
    size variation and dropped edges make it irregular and broken."""
    x, y, rn = L.lattice(g, L.px(spacing), jitter)
    ok = keep(rn, x, y) & L.free(x, y)
    x, y = x[ok], y[ok]
    n = len(x)
    rad = L.px(spacing) / math.sqrt(3) * (1 + size_var * g.uniform(-1, 1, n))
    rot = (L.phi + g.normal(0, 0.25 * size_var, n))[:, None]
    vx = x[:, None] + rad[:, None] * (_HEX[:, 0] * np.cos(rot) - _HEX[:, 1] * np.sin(rot))
    vy = y[:, None] + rad[:, None] * (_HEX[:, 0] * np.sin(rot) + _HEX[:, 1] * np.cos(rot))
    keep_edge = (g.random((n, 6)) >= drop).tolist()
    widths = [[L.w(v) for v in row] for row in g.integers(width[0], width[1] + 1, (n, 6))]
    picks = g.integers(0, len(colours), (n, 6)).tolist()
    vx, vy = vx.tolist(), vy.tolist()

    def draw(d: ImageDraw.ImageDraw) -> None:
        for i in range(n):
            px_, py_ = vx[i], vy[i]
            if drop == 0.0 and width[0] == width[1] and len(colours) == 1:
                d.line(
                    [*zip(px_, py_, strict=True), (px_[0], py_[0])],
                    fill=colours[0],
                    width=L.w(width[0]),
                )
                continue
            for k in range(6):
                if keep_edge[i][k]:
                    d.line([(px_[k], py_[k]), (px_[k - 5], py_[k - 5])],
                           fill=colours[picks[i][k]], width=widths[i][k])  # fmt: skip

    L.inner.append(draw)


def _typical_network(L: _Lesion, g: np.random.Generator) -> None:
    col = L.pigment(0.5, 190)
    # Regular thin brown honeycomb, thinning out towards the periphery.
    _honeycomb(L, g, 8.5, 0.04, (2, 2), [col],
               lambda rn, x, y: rn < 0.72 + 0.3 * g.random(rn.shape))  # fmt: skip


def _atypical_network(L: _Lesion, g: np.random.Generator) -> None:
    nz = _noise(g, L.size, 4)
    cols = [(26, 18, 16, 240), (58, 34, 22, 240)]

    def keep(rn, x, y):
        patch = nz[np.clip(y.astype(int), 0, L.size - 1), np.clip(x.astype(int), 0, L.size - 1)]
        return (rn < 1.0) & (patch > 0.4)

    # Thick, irregular, broken network in patches, ending abruptly at the border.
    _honeycomb(L, g, 11.0, 0.18, (3, 5), cols, keep, size_var=0.4, drop=0.25)


def _regular_dots(L: _Lesion, g: np.random.Generator) -> None:
    x, y, rn = L.lattice(g, L.px(10), 0.06)
    ok = (rn < 0.75) & L.free(x, y)
    col = L.pigment(0.45, 240)
    r = L.px(2.3)
    L.inner.append(lambda d: _dots(d, x[ok], y[ok], r, col))


def _irregular_dots(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(18, 32))
    x, y = L.pts(g, n, 0.45, 1.0, around=g.uniform(0, 2 * math.pi), spread=1.0)
    r = L.px(g.uniform(1.4, 4.4, n))
    cols = [
        [(30, 22, 20, 240), (76, 44, 28, 240), (30, 22, 20, 240)][k] for k in g.integers(0, 3, n)
    ]
    L.inner.append(lambda d: _dots(d, x, y, r, cols))


def _streak(d, L, theta, r0, r1, width, col, bulb):
    x0, y0 = L.polar(np.array([theta]), np.array([r0]))
    x1, y1 = L.polar(np.array([theta]), np.array([r1]))
    d.line([(x0[0], y0[0]), (x1[0], y1[0])], fill=col, width=width)
    if bulb:
        rr = L.px(2.0)
        d.ellipse([x1[0] - rr, y1[0] - rr, x1[0] + rr, y1[0] + rr], fill=col)


def _regular_streaks(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(16, 24))
    th = g.uniform(0, 2 * math.pi) + np.arange(n) * 2 * math.pi / n + g.normal(0, 0.04, n)
    r1 = g.uniform(1.12, 1.22, n)
    col = L.pigment(0.4, 240)

    def draw(d):
        for t, e in zip(th, r1, strict=True):
            _streak(d, L, t, 0.72, e, L.w(2.5), col, True)

    L.outer.append(draw)


def _irregular_streaks(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(5, 10))
    th = g.uniform(0, 2 * math.pi) + g.normal(0, 0.7, n)
    r0, r1 = g.uniform(0.6, 0.85, n), g.uniform(1.05, 1.35, n)
    wd = g.integers(2, 4, n)
    col = (32, 22, 20, 240)

    def draw(d):
        for t, a, b, k in zip(th, r0, r1, wd, strict=True):
            _streak(d, L, t, a, b, L.w(k), col, False)

    L.outer.append(draw)


def _blue_white_veil(L: _Lesion, g: np.random.Generator) -> None:
    (x0,), (y0,) = L.pts(g, 1, 0.05, 0.4)
    a = L.R * g.uniform(0.65, 0.8)
    m = L.blob(g, x0, y0, a, a * g.uniform(0.65, 0.9), rough=0.9, soft=1.8) * (L.rn < 0.97)
    L.tint(m, (104, 122, 160), 0.8)
    L.occlude(m)
    L.tint(m * _noise(g, L.size, 10), (196, 206, 224), 0.45)  # white "ground-glass" haze


def _regression(L: _Lesion, g: np.random.Generator) -> None:
    (x0,), (y0,) = L.pts(g, 1, 0.1, 0.5)
    a = L.R * g.uniform(0.4, 0.5)
    m = L.blob(g, x0, y0, a, a * 0.8)
    L.tint(m, (232, 226, 222), 0.8)
    L.occlude(m)
    n = int(g.integers(45, 70))
    rr = a * np.sqrt(g.random(n)) * 1.1
    t = g.uniform(0, 2 * math.pi, n)
    x, y = x0 + rr * np.cos(t), y0 + rr * np.sin(t)
    r = L.px(1.3)
    L.inner.append(lambda d: _dots(d, x, y, r, (92, 98, 122, 220)))


def _milia_cysts(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(6, 13))
    x, y = L.pts(g, n, 0.0, 0.85)
    r = L.px(g.uniform(2.0, 3.4, n))

    def draw(d):
        _dots(d, x, y, r * 1.6, (250, 246, 225, 70))  # halo
        _dots(d, x, y, r, (252, 250, 232, 245))

    L.inner.append(draw)


def _comedo_openings(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(5, 11))
    x, y = L.pts(g, n, 0.0, 0.85)
    r = L.px(g.uniform(2.5, 3.8, n))

    def draw(d):
        _dots(d, x, y, r, L.pigment(0.6, 235))
        _dots(d, x + 0.3 * r, y + 0.3 * r, r * 0.55, (30, 20, 16, 245))  # crater floor

    L.inner.append(draw)


def _fissures_ridges(L: _Lesion, g: np.random.Generator) -> None:
    # Brain-like: the level lines of smooth noise meander like sulci between gyri.
    n = _noise(g, L.size, round(L.size / L.px(10)))
    inside = np.clip((0.95 - L.rn) / 0.15, 0, 1)
    sulci = np.clip(1.6 - np.abs(n - 0.5) / 0.05, 0, 1) * inside
    L.tint(inside * np.clip((n - 0.5) * 6, 0, 1), L.main * 1.2 + 28, 0.45)  # raised gyri
    L.tint(sulci, L.pigment(0.35, 0)[:3], 0.9)


def _arborizing_vessels(L: _Lesion, g: np.random.Generator) -> None:
    col = L.vessel(245)
    segs: list[tuple[list, int]] = []

    def branch(x, y, ang, length, width, depth):
        p = _polyline(g, x, y, ang, 4, length / 4, 0.18)
        segs.append((p, L.w(width)))
        if depth:
            for side in (-1, 1):
                branch(*p[-1], ang + side * g.uniform(0.35, 0.8), length * 0.65, width * 0.6,
                       depth - 1)  # fmt: skip

    for _ in range(int(g.integers(2, 4))):
        t = g.uniform(0, 2 * math.pi)
        (x,), (y,) = L.polar(np.array([t]), np.array([g.uniform(0.6, 0.85)]))
        branch(x, y, t + math.pi + g.normal(0, 0.4), L.R * 0.5, 3.6, 2)

    def draw(d):
        for p, wd in segs:  # trunk thick, branches thinner: thick-to-thin
            d.line(p, fill=col, width=wd, joint="curve")

    L.inner.append(draw)


def _dotted_vessels(L: _Lesion, g: np.random.Generator) -> None:
    x, y, rn = L.lattice(g, L.px(8.5), 0.15)
    ok = (rn < 0.92) & L.free(x, y)
    r = L.px(1.6)
    col = L.vessel(240)
    L.inner.append(lambda d: _dots(d, x[ok], y[ok], r, col))


def _hairpin_vessels(L: _Lesion, g: np.random.Generator) -> None:
    col = L.vessel(245)
    n = int(g.integers(6, 12))
    th = g.uniform(0, 2 * math.pi, n)
    x0, y0 = L.polar(th, g.uniform(0.2, 0.75, n))
    ln, half = L.px(g.uniform(7, 10, n)), L.px(1.8)
    loops = []
    for x, y, t, h in zip(x0, y0, th + g.normal(0, 0.3, n), ln, strict=True):
        c, s = math.cos(t), math.sin(t)
        px, py = -s * half, c * half
        tip = [(x + c * h + c * half * math.sin(a) + px * math.cos(a),
                y + s * h + s * half * math.sin(a) + py * math.cos(a))
               for a in np.linspace(0, math.pi, 6)]  # fmt: skip
        loops.append([(x + px, y + py), *tip, (x - px, y - py)])

    def draw(d):
        for p in loops:
            d.line(p, fill=(236, 222, 214, 110), width=L.w(5.5), joint="curve")  # white halo
            d.line(p, fill=col, width=L.w(1.8), joint="curve")

    L.inner.append(draw)


def _glomerular_vessels(L: _Lesion, g: np.random.Generator) -> None:
    col = L.vessel(245)
    x, y, rn = L.lattice(g, L.px(12), 0.2)
    ok = (rn < 0.85) & (g.random(rn.shape) < 0.8) & L.free(x, y)
    cx, cy = x[ok], y[ok]
    off = L.px(g.uniform(-2.0, 2.0, (len(cx), 4, 2)))
    rr = L.px(g.uniform(1.5, 2.4, (len(cx), 4)))

    def draw(d):
        for i in range(len(cx)):  # coiled clusters of small loops
            for k in range(4):
                x0, y0, r = cx[i] + off[i, k, 0], cy[i] + off[i, k, 1], rr[i, k]
                d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], outline=col,
                          width=L.w(1.6))  # fmt: skip

    L.inner.append(draw)


def _linear_irregular_vessels(L: _Lesion, g: np.random.Generator) -> None:
    col = L.vessel(245)
    paths = []
    for _ in range(int(g.integers(3, 6))):
        (x,), (y,) = L.pts(g, 1, 0.0, 0.7)
        paths.append((_polyline(g, x, y, g.uniform(0, 2 * math.pi), 8, L.px(3.5), 0.7),
                      g.integers(2, 4, 8)))  # fmt: skip

    def draw(d):
        for p, ws in paths:
            for (a, b), wd in zip(zip(p[:-1], p[1:], strict=True), ws, strict=True):
                d.line([a, b], fill=col, width=L.w(wd))

    L.inner.append(draw)


def _lacunae(L: _Lesion, g: np.random.Generator) -> None:
    x, y, rn = L.lattice(g, L.px(11), 0.1)
    ok = rn < 0.9
    x, y = x[ok], y[ok]
    r = L.px(g.uniform(3.8, 5.4, len(x)))
    palette = [(190, 36, 54), (142, 24, 50), (112, 38, 92), (168, 40, 78)]
    cols = [(*palette[k], 245) for k in g.integers(0, 4, len(x))]
    L.tint(L.alpha, (226, 176, 184), 0.45)  # pale septa between the lacunae

    def draw(d):
        for i in range(len(x)):
            d.ellipse([x[i] - r[i], y[i] - r[i], x[i] + r[i], y[i] + r[i]], fill=cols[i])

    L.inner.append(draw)


def _central_white_patch(L: _Lesion, g: np.random.Generator) -> None:
    a = L.R * g.uniform(0.38, 0.48)
    m = L.blob(g, L.cx + g.normal(0, 0.06) * L.R, L.cy + g.normal(0, 0.06) * L.R, a, a * 0.8)
    L.tint(m, (242, 238, 232), 0.92)
    L.occlude(m)


def _peripheral_network(L: _Lesion, g: np.random.Generator) -> None:
    col = L.pigment(0.55, 210)
    _honeycomb(L, g, 7.5, 0.04, (2, 2), [col], lambda rn, x, y: (rn > 0.55) & (rn < 1.02))


def _leaf_like(L: _Lesion, g: np.random.Generator) -> None:
    leaves = []
    for t in g.uniform(0, 2 * math.pi, int(g.integers(3, 6))):
        for k in range(3):  # bulbous finger-like lobes pointing outwards
            tt = t + (k - 1) * 0.18
            (x,), (y,) = L.polar(np.array([tt]), np.array([g.uniform(0.72, 0.9)]))
            leaves.append((x, y, L.px(g.uniform(3.5, 5.0)), tt))

    def draw(d):
        for x, y, r, t in leaves:
            pts = [(x + math.cos(t) * r * 1.6 * math.cos(a) - math.sin(t) * r * math.sin(a),
                    y + math.sin(t) * r * 1.6 * math.cos(a) + math.cos(t) * r * math.sin(a))
                   for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]  # fmt: skip
            d.polygon(pts, fill=(78, 84, 110, 235))

    L.inner.append(draw)


def _spoke_wheel(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(2, 5))
    x, y = L.pts(g, n, 0.2, 0.7)
    k = g.integers(7, 11, n)

    def draw(d):
        for cx, cy, m in zip(x, y, k, strict=True):
            for t in np.linspace(0, 2 * math.pi, m, endpoint=False):
                d.line([(cx, cy), (cx + L.px(7) * math.cos(t), cy + L.px(7) * math.sin(t))],
                       fill=(104, 98, 132, 235), width=L.w(2))  # fmt: skip
            r = L.px(2.6)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(50, 42, 66, 250))  # dark hub

    L.inner.append(draw)


def _ovoid_nests(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(2, 6))
    x, y = L.pts(g, n, 0.1, 0.75)
    a, b, t = L.px(g.uniform(5, 8, n)), L.px(g.uniform(3.5, 5, n)), g.uniform(0, math.pi, n)

    def draw(d):
        for i in range(n):
            ct, st = math.cos(t[i]), math.sin(t[i])
            pts = [(x[i] + a[i] * math.cos(u) * ct - b[i] * math.sin(u) * st,
                    y[i] + a[i] * math.cos(u) * st + b[i] * math.sin(u) * ct)
                   for u in np.linspace(0, 2 * math.pi, 14, endpoint=False)]  # fmt: skip
            d.polygon(pts, fill=(84, 98, 132, 240))

    L.inner.append(draw)


def _shiny_white_lines(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(8, 15))
    x, y = L.pts(g, n, 0.0, 0.8)
    base = g.uniform(0, math.pi)
    t = base + g.integers(0, 2, n) * (math.pi / 2)  # orthogonal crossings: chrysalis
    ln = L.px(g.uniform(4, 7, n))

    def draw(d):
        for i in range(n):
            dx, dy = ln[i] * math.cos(t[i]), ln[i] * math.sin(t[i])
            d.line([(x[i] - dx, y[i] - dy), (x[i] + dx, y[i] + dy)], fill=(252, 252, 250, 240),
                   width=L.w(2))  # fmt: skip

    L.inner.append(draw)


def _strawberry(L: _Lesion, g: np.random.Generator) -> None:
    L.tint(L.alpha, (214, 88, 92), 0.55)  # erythematous pseudo-network background
    x, y, rn = L.lattice(g, L.px(9), 0.12)
    ok = rn < 0.92
    r = L.px(2.9)

    def draw(d):
        _dots(d, x[ok], y[ok], r, (248, 240, 230, 235))  # white halo round the follicle
        _dots(d, x[ok], y[ok], r * 0.45, (214, 180, 96, 245))  # keratin plug

    L.inner.append(draw)


def _homogeneous(L: _Lesion, g: np.random.Generator) -> None:
    # Structureless: zones and texture collapse into one even, more saturated colour.
    mean = (L.rgb * L.alpha).sum(axis=(1, 2)) / max(1.0, float(L.alpha.sum()))
    grey = float(mean.mean())
    L.rgb[:] = np.clip((mean - grey) * 1.35 + grey * 0.9, 0, 255)[:, None, None]


def _parallel(L, g, spacing, width, col, pores):
    c, s = math.cos(L.phi), math.sin(L.phi)
    ext = L.R * float(L.r_tab.max()) * 1.1
    offs = np.arange(-ext, ext, L.px(spacing)) + g.uniform(0, L.px(spacing))
    lines = [((L.cx + o * -s - ext * c, L.cy + o * c - ext * s),
              (L.cx + o * -s + ext * c, L.cy + o * c + ext * s)) for o in offs]  # fmt: skip

    def draw(d):
        for a, b in lines:
            d.line([a, b], fill=col, width=L.w(width))
            if pores:  # eccrine duct openings dotting the pigmented ridges
                for k in np.arange(0, 2 * ext, L.px(6)):
                    px_, py_ = a[0] + k * c, a[1] + k * s
                    r = L.px(1.2)
                    d.ellipse([px_ - r, py_ - r, px_ + r, py_ + r], fill=(236, 228, 220, 220))

    L.inner.append(draw)


def _parallel_ridge(L: _Lesion, g: np.random.Generator) -> None:
    _parallel(L, g, 9.0, 4.5, L.pigment(0.5, 225), True)


def _parallel_furrow(L: _Lesion, g: np.random.Generator) -> None:
    _parallel(L, g, 8.0, 2.0, L.pigment(0.45, 230), False)


def _annular_granular(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(6, 11))
    x, y = L.pts(g, n, 0.0, 0.8)
    skin = np.array(COLOURS["tan"]) * 1.1
    ring = np.linspace(0, 2 * math.pi, 10, endpoint=False)

    def draw(d):
        r0 = L.px(2.6)
        _dots(d, x, y, r0, (*np.clip(skin, 0, 255).astype(int), 220))  # follicle openings
        for cx, cy in zip(x, y, strict=True):  # grey granules ringing each follicle
            _dots(d, cx + L.px(5) * np.cos(ring), cy + L.px(5) * np.sin(ring), L.px(1.2),
                  (88, 90, 108, 230))  # fmt: skip

    L.inner.append(draw)


def _rosettes(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(5, 10))
    x, y = L.pts(g, n, 0.0, 0.8)
    o, r = L.px(1.9), L.px(1.2)

    def draw(d):
        for cx, cy in zip(x, y, strict=True):  # four white points in a square
            _dots(d, np.array([cx - o, cx + o, cx - o, cx + o]),
                  np.array([cy - o, cy - o, cy + o, cy + o]), r, (252, 252, 250, 245))  # fmt: skip

    L.inner.append(draw)


def _keratin_mass(L: _Lesion, g: np.random.Generator) -> None:
    a = L.R * g.uniform(0.38, 0.48)
    x0, y0 = L.cx + g.normal(0, 0.05) * L.R, L.cy + g.normal(0, 0.05) * L.R
    m = L.blob(g, x0, y0, a, a * 0.85, rough=0.4)
    L.tint(m, (236, 222, 168), 0.95)
    L.occlude(m)
    L.tint(m * (_noise(g, L.size, 24) > 0.62), (204, 178, 112), 0.6)  # lamellated, rough
    L.tint(np.clip(m * (1 - m) * 4, 0, 1), (178, 136, 84), 0.35)  # brownish rim


def _scale(L: _Lesion, g: np.random.Generator) -> None:
    n = int(g.integers(8, 15))
    x, y = L.pts(g, n, 0.0, 1.0)
    flakes = []
    for cx, cy in zip(x, y, strict=True):
        k = int(g.integers(4, 7))
        t = np.sort(g.uniform(0, 2 * math.pi, k))
        r = L.px(g.uniform(2.5, 6.0, k))
        flakes.append(list(zip(cx + r * np.cos(t), cy + r * np.sin(t), strict=True)))
    alpha = g.integers(170, 225, n)

    def draw(d):
        for p, a in zip(flakes, alpha, strict=True):
            d.polygon(p, fill=(246, 244, 238, int(a)))

    L.outer.append(draw)


def _ulceration(L: _Lesion, g: np.random.Generator) -> None:
    (x0,), (y0,) = L.pts(g, 1, 0.0, 0.35)
    a = L.R * g.uniform(0.38, 0.5)
    m = L.blob(g, x0, y0, a, a * 0.75)
    L.tint(m, (104, 30, 24), 0.95)
    L.occlude(m)
    L.tint(m * (_noise(g, L.size, 20) > 0.65), (58, 18, 14), 0.8)  # clotted blood
    xs, ys = x0 + g.normal(0, a * 0.4, 6), y0 + g.normal(0, a * 0.4, 6)
    L.inner.append(lambda d: _dots(d, xs, ys, L.px(1.6), (206, 168, 84, 220)))  # fibrin


def _crust_patches(L, g, n, size):
    patches = []
    x, y = L.pts(g, n, 0.0, 0.7)
    for cx, cy in zip(x, y, strict=True):
        t = np.sort(g.uniform(0, 2 * math.pi, 7))
        r = L.px(g.uniform(size * 0.6, size * 1.2, 7))
        patches.append(list(zip(cx + r * np.cos(t), cy + r * np.sin(t), strict=True)))

    def draw(d):
        for p in patches:
            d.polygon(p, fill=(170, 112, 46, 230), outline=(92, 56, 26, 240), width=L.w(2))

    L.inner.append(draw)


def _crust(L: _Lesion, g: np.random.Generator) -> None:
    _crust_patches(L, g, int(g.integers(3, 6)), 10.0)


STRUCTURES: dict[str, Callable[[_Lesion, np.random.Generator], None]] = {
    # Drawing order: regions and meshes first, then dots, vessels and white marks on top.
    "homogeneous pattern": _homogeneous,
    "strawberry pattern": _strawberry,
    "lacunae": _lacunae,
    "blue-white veil": _blue_white_veil,
    "regression structures": _regression,
    "central white patch": _central_white_patch,
    "keratin mass": _keratin_mass,
    "ulceration": _ulceration,
    "typical pigment network": _typical_network,
    "atypical pigment network": _atypical_network,
    "peripheral fine network": _peripheral_network,
    "parallel ridge pattern": _parallel_ridge,
    "parallel furrow pattern": _parallel_furrow,
    "fissures and ridges": _fissures_ridges,
    "leaf-like areas": _leaf_like,
    "spoke-wheel areas": _spoke_wheel,
    "blue-grey ovoid nests": _ovoid_nests,
    "regular dots and globules": _regular_dots,
    "irregular dots and globules": _irregular_dots,
    "annular-granular pattern": _annular_granular,
    "comedo-like openings": _comedo_openings,
    "milia-like cysts": _milia_cysts,
    "arborizing vessels": _arborizing_vessels,
    "dotted vessels": _dotted_vessels,
    "hairpin vessels": _hairpin_vessels,
    "glomerular vessels": _glomerular_vessels,
    "linear irregular vessels": _linear_irregular_vessels,
    "shiny white lines": _shiny_white_lines,
    "rosettes": _rosettes,
    "crust": _crust,
    "regular streaks": _regular_streaks,
    "irregular streaks": _irregular_streaks,
    "scale": _scale,
}


# --- surfaces ----------------------------------------------------------------------------------


def _specular(L: _Lesion, g, n: int, rad: float, strength: float) -> None:
    x, y = L.pts(g, n, 0.1, 0.7, around=L.light, spread=0.6)
    xx, yy = _grid(L.size)
    r2 = (L.px(rad) * g.uniform(0.7, 1.3, n)) ** 2

    spots = list(zip(x.tolist(), y.tolist(), r2.tolist(), strict=True))

    def post(img):
        m = sum(np.exp(-((xx - a) ** 2 + (yy - b) ** 2) / c) for a, b, c in spots)
        m = np.clip(m, 0, 1) * L.alpha * strength
        img += (255 - img) * m

    L.post.append(post)


def _smooth(L: _Lesion, g: np.random.Generator) -> None:
    # Texture flattened; a broad soft sheen.
    L.rgb /= 0.9 + 0.2 * L.texture
    _specular(L, g, 1, 14, 0.22)


def _scaly(L: _Lesion, g: np.random.Generator) -> None:
    L.tint(L.alpha, (238, 232, 226), 0.12)
    n = int(g.integers(40, 70))
    x, y = L.pts(g, n, 0.0, 0.95)
    t = g.uniform(0, math.pi, n)
    ln = L.px(g.uniform(1.5, 3.5, n))

    def draw(d):
        for i in range(n):
            dx, dy = ln[i] * math.cos(t[i]), ln[i] * math.sin(t[i])
            d.line([(x[i] - dx, y[i] - dy), (x[i] + dx, y[i] + dy)], fill=(248, 246, 240, 190),
                   width=L.w(2))  # fmt: skip

    L.inner.append(draw)


def _waxy(L: _Lesion, g: np.random.Generator) -> None:
    # Translucent yellowish "stuck-on" look, mottled, with a glossy sheen.
    L.tint(L.alpha * (0.5 + _noise(g, L.size, 7)), (232, 206, 150), 0.35)
    L.tint(L.alpha * (1 - L.alpha) * 4, L.main * 0.6, 0.6)  # sharp "stuck-on" edge
    _specular(L, g, 2, 10, 0.25)


def _crusted(L: _Lesion, g: np.random.Generator) -> None:
    L.tint(L.alpha * (_noise(g, L.size, 26) > 0.6), (176, 124, 56), 0.55)
    _crust_patches(L, g, int(g.integers(2, 4)), 6.0)


def _ulcerated(L: _Lesion, g: np.random.Generator) -> None:
    (x0,), (y0,) = L.pts(g, 1, 0.0, 0.3)
    a = L.R * g.uniform(0.3, 0.42)
    m = L.blob(g, x0, y0, a, a * 0.8)
    L.tint(np.clip(m * 3, 0, 1) - m, (86, 26, 22), 0.8)  # dark rolled rim
    L.tint(m, (192, 46, 44), 0.9)  # raw red base
    _specular(L, g, 2, 3, 0.5)


def _verrucous(L: _Lesion, g: np.random.Generator) -> None:
    x, y, rn = L.lattice(g, L.px(9.5), 0.15)
    ok = rn < 0.95
    x, y = x[ok], y[ok]
    r = L.px(g.uniform(3.6, 4.6, len(x)))
    lx, ly = math.cos(L.light) * L.px(1.2), math.sin(L.light) * L.px(1.2)
    shade = _darker(L.main, 0.55, 150)
    hi = (*np.clip(L.main * 1.2 + 30, 0, 255).astype(int), 140)

    def draw(d):  # cobblestone papillae: shadow away from the light, highlight towards it
        _dots(d, x - lx, y - ly, r, shade)
        _dots(d, x + lx, y + ly, r * 0.6, hi)

    L.inner.append(draw)


def _shiny(L: _Lesion, g: np.random.Generator) -> None:
    L.tint(L.alpha, (246, 236, 236), 0.16)  # pearly translucency
    _specular(L, g, 3, 4, 0.55)


def _keratotic(L: _Lesion, g: np.random.Generator) -> None:
    rough = _noise(g, L.size, 32)
    L.tint(L.alpha * np.clip((rough - 0.5) * 4, 0, 1), (236, 226, 186), 0.7)


def _eroded(L: _Lesion, g: np.random.Generator) -> None:
    for _ in range(int(g.integers(2, 4))):
        (x0,), (y0,) = L.pts(g, 1, 0.0, 0.65)
        a = L.R * g.uniform(0.15, 0.25)
        L.tint(L.blob(g, x0, y0, a, a * 0.8), (214, 72, 76), 0.75)
    _specular(L, g, 3, 2.5, 0.5)


SURFACES: dict[str, Callable[[_Lesion, np.random.Generator], None]] = {
    "smooth": _smooth, "scaly": _scaly, "waxy": _waxy, "crusted": _crusted, "ulcerated": _ulcerated,
    "verrucous": _verrucous, "shiny": _shiny, "keratotic": _keratotic, "eroded": _eroded,
}  # fmt: skip

VOCABULARY: dict[str, tuple[str, ...]] = {
    "symmetry": _SYMMETRY, "border": _BORDER, "elevation": _ELEVATION,
    "size": tuple(_SIZE_FRAC), "colours": tuple(COLOURS), "structures": tuple(STRUCTURES),
    "surface": tuple(SURFACES),
}  # fmt: skip


# --- background, elevation, camera -------------------------------------------------------------


def _skin(size: int, tone: int, g: np.random.Generator) -> np.ndarray:
    base = np.array(_SKIN[tone], np.float32) * g.uniform(0.95, 1.04, 3).astype(np.float32)
    mottle = _noise(g, size, 6)
    red = _noise(g, size, 9)
    img = base[:, None, None] * (0.95 + 0.1 * mottle)  # channels first, like _Lesion.rgb
    # Patchy erythema (sun damage) tints towards red.
    img += np.array([24, -16, -16], np.float32)[:, None, None] * np.clip(red - 0.5, 0, 1)
    return img


def _validate(f: Features, size: int, skin_tone: int, modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality={modality!r}: expected one of {MODALITIES}")
    skin_rgb(skin_tone)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size={size!r}: expected an int >= 32")
    for attr in ("symmetry", "border", "elevation", "size"):
        if getattr(f, attr) not in VOCABULARY[attr]:
            raise ValueError(f"unknown {attr} {getattr(f, attr)!r}; features.yaml allows "
                             f"{list(VOCABULARY[attr])}")  # fmt: skip
    for attr in ("colours", "structures", "surface"):
        values = getattr(f, attr)
        if isinstance(values, str):
            raise ValueError(f"{attr}={values!r}: expected a list of values, not a string")
        for v in values:
            if v not in VOCABULARY[attr]:
                raise ValueError(f"unknown {attr} value {v!r}; features.yaml allows "
                                 f"{list(VOCABULARY[attr])}")  # fmt: skip


def _elevation(L: _Lesion, img: np.ndarray, g: np.random.Generator) -> None:
    if L.f.elevation == "flat":
        return
    k = 1.0 if L.f.elevation == "raised" else 2.0
    lc, ls = math.cos(L.light), math.sin(L.light)
    # Lit side brighter, far side darker; a dome for nodules.
    tilt = (L.dx * lc + L.dy * ls) / L.R
    dome = np.clip(1 - L.rn**2, 0, 1)
    shade = 1 + (0.10 * k * tilt + 0.08 * (k - 1) * dome - 0.04 * k) * L.alpha
    # Cast shadow on the skin away from the light.
    sh = int(round(L.px(2.0 * k)))
    cast = np.roll(L.alpha, (int(round(-ls * sh)), int(round(-lc * sh))), axis=(0, 1))
    shade *= 1 - 0.22 * np.clip(cast - L.alpha, 0, 1)
    img *= shade
    if L.f.elevation == "nodular":
        _specular(L, g, 1, 0.16 * L.R / L.s, 0.5)


def _hairs(d: ImageDraw.ImageDraw, g: np.random.Generator, size: int, n: int) -> None:
    for _ in range(n):
        x, y = g.uniform(0, size, 2)
        p = _polyline(g, x, y, g.uniform(0, 2 * math.pi), 8, size * g.uniform(0.03, 0.07), 0.12)
        d.line(p, fill=(58, 42, 34, 160), width=max(1, round(size / 128 * g.uniform(0.8, 1.4))),
               joint="curve")  # fmt: skip


def render(features: Features, rng: np.random.Generator, *, size: int = 128, skin_tone: int = 2,
           modality: str = "dermoscopic") -> Image.Image:  # fmt: skip
    """Draw a lesion whose visible features follow ``features`` (RGB, size x size).

    ``skin_tone`` is the Fitzpatrick type 1..6; ``modality`` "dermoscopic" (centred lesion,
    dermatoscope's dark circular vignette) or "clinical" (smaller lesion, hairs and pores).
    """
    _validate(features, size, skin_tone, modality)
    size, skin_tone = int(size), int(skin_tone)
    seeds = rng.integers(0, 2**63, size=5 + len(STRUCTURES) + len(SURFACES))
    g_shape, g_skin, g_paint, g_elev, g_post = (np.random.default_rng(s) for s in seeds[:5])
    L = _Lesion(features, g_shape, size, modality)
    skin = _skin(size, skin_tone, g_skin)
    _paint(L, g_paint, skin_tone)
    present_s, present_f = set(features.structures), set(features.surface)
    for i, (name, fn) in enumerate(STRUCTURES.items()):
        if name in present_s:
            fn(L, np.random.default_rng(seeds[5 + i]))
    for i, (name, fn) in enumerate(SURFACES.items()):
        if name in present_f:
            fn(L, np.random.default_rng(seeds[5 + len(STRUCTURES) + i]))

    base = np.clip(skin + (L.rgb - skin) * L.alpha, 0, 255).astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(base.transpose(1, 2, 0)))
    if L.inner:
        inner = img.copy()
        d = ImageDraw.Draw(inner, "RGBA")
        for op in L.inner:
            op(d)
        clip = Image.fromarray((np.clip(L.alpha * 1.05, 0, 1) * 255).astype(np.uint8))
        img = Image.composite(inner, img, clip)
    d = ImageDraw.Draw(img, "RGBA")
    for op in L.outer:
        op(d)
    clinical = modality == "clinical"
    if clinical:
        pores = g_post.uniform(0, size, (int(g_post.integers(25, 50)), 2))
        _dots(d, pores[:, 0], pores[:, 1], size / 128 * 0.9, (60, 40, 30, 45))
    n_hairs = int(g_post.integers(0, 4)) if clinical else int(g_post.integers(0, 5)) // 3
    _hairs(d, g_post, size, n_hairs)

    out = np.asarray(img).transpose(2, 0, 1).astype(np.float32)
    _elevation(L, out, g_elev)
    for op in L.post:
        op(out)
    # Illumination: overall exposure, white balance and a gentle gradient.
    ang = g_post.uniform(0, 2 * math.pi)
    xx, yy = _grid(size)
    ramp = ((xx - size / 2) * math.cos(ang) + (yy - size / 2) * math.sin(ang)) / (size / 2)
    grad = 1 + g_post.uniform(0, 0.08) * ramp
    exposure = g_post.uniform(0.92, 1.06) * g_post.uniform(0.97, 1.03, 3).astype(np.float32)
    out *= grad * exposure[:, None, None]
    if not clinical:
        # Polarised dermoscopy: a touch more contrast, then the dark circular field stop.
        out = (out - 128) * 1.06 + 128
        vx, vy = (size / 2 + g_post.uniform(-0.02, 0.02) * size for _ in range(2))
        rv = size * g_post.uniform(0.5, 0.58)
        v = np.clip((rv - np.hypot(xx - vx, yy - vy)) / (3 * size / 128), 0, 1)
        out = (out - 10) * v + 10
    oy, ox = (int(v) for v in g_post.integers(0, size, 2))
    out += _grain(size)[:, oy : oy + size, ox : ox + size] * g_post.uniform(1.5, 3.5)
    img = Image.fromarray(
        np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    )
    buf = io.BytesIO()  # real JPEG round trip: the artefacts of archived clinical photos
    img.save(buf, "JPEG", quality=int(g_post.integers(75, 95)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")
