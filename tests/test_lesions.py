"""The lesion renderer: determinism, API contract, and that the pixels follow the features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skinr1.embedded import lesions
from skinr1.embedded.lesions import MODALITIES, VOCABULARY, render, skin_rgb
from skinr1.rules import Features, load_rules, load_vocabulary
from skinr1.taxonomy import KNOWLEDGE_DIR, load_taxonomy

BROWN = Features(colours=("light brown",))


def pixels(f: Features, seed: int = 0, **kw) -> np.ndarray:
    return np.asarray(render(f, np.random.default_rng(seed), **kw), np.int16)


def centre_disc(img: np.ndarray, frac: float = 0.09) -> np.ndarray:
    """Pixels of a disc at the image centre. A medium dermoscopic lesion is centred to within 8%
    of the image and its outline never comes closer than ~0.18 of the image to its centre, so
    this disc lies inside the lesion."""
    n = img.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    return img[np.hypot(xx - n / 2, yy - n / 2) < frac * n]


def lesion_mask(img: np.ndarray, thresh: float = 45.0) -> np.ndarray:
    """Pixels far in colour from the skin, the skin being the median of a ring just inside the
    dermatoscope's field stop (outside any small lesion)."""
    n = img.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - n / 2, yy - n / 2)
    ring = img[(r > 0.40 * n) & (r < 0.46 * n)]
    skin = np.median(ring, axis=0)
    return (np.linalg.norm(img - skin, axis=2) > thresh) & (r < 0.47 * n)


def mirror_score(mask: np.ndarray) -> float:
    """Best IoU of the mask with its own reflection in a line through its centroid (0..1)."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    best = 0.0
    for deg in range(0, 180, 5):
        t = math.radians(deg)
        ux, uy = math.cos(t), math.sin(t)
        dx, dy = xs - cx, ys - cy
        along = dx * ux + dy * uy
        rx = np.rint(cx + 2 * along * ux - dx).astype(int)  # reflect across the axis (ux, uy)
        ry = np.rint(cy + 2 * along * uy - dy).astype(int)
        ok = (rx >= 0) & (rx < mask.shape[1]) & (ry >= 0) & (ry < mask.shape[0])
        inter = int(mask[ry[ok], rx[ok]].sum())
        best = max(best, inter / (2 * len(xs) - inter))
    return best


# --- contract ----------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_different_seed_differs():
    f = Features(symmetry="asymmetric", colours=("dark brown", "black"),
                 structures=("atypical pigment network", "blue-white veil"))  # fmt: skip
    for modality in MODALITIES:
        a = render(f, np.random.default_rng(7), modality=modality).tobytes()
        b = render(f, np.random.default_rng(7), modality=modality).tobytes()
        c = render(f, np.random.default_rng(8), modality=modality).tobytes()
        assert a == b
        assert a != c


def test_consumes_the_generator():
    # Successive calls on one generator give different images (a data set is not 1 image).
    rng = np.random.default_rng(0)
    assert render(BROWN, rng).tobytes() != render(BROWN, rng).tobytes()


@pytest.mark.parametrize("size", [32, 112, 128, 224])
def test_size_and_mode(size):
    img = render(BROWN, np.random.default_rng(0), size=size, modality="clinical")
    assert img.mode == "RGB" and img.size == (size, size)


def test_drawable_vocabulary_is_exactly_features_yaml():
    vocab = load_vocabulary()
    assert set(VOCABULARY) == set(vocab)
    for attr, values in vocab.items():
        assert set(VOCABULARY[attr]) == set(values), attr


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"symmetry": "lopsided"}, "lopsided"),
        ({"border": "fuzzy"}, "fuzzy"),
        ({"elevation": "domed"}, "domed"),
        ({"size": "huge"}, "huge"),
        ({"colours": ("light brown", "mauve")}, "mauve"),
        ({"structures": ("sparkles",)}, "sparkles"),
        ({"surface": ("velvety",)}, "velvety"),
    ],
)
def test_unknown_vocabulary_value_names_it(kwargs, name):
    attr = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"{attr}.*'{name}'"):
        render(Features(**kwargs), np.random.default_rng(0))


def test_bare_string_list_is_rejected():
    # ("scale") is a str, not a 1-tuple: iterating it would look up "s", "c", ...
    with pytest.raises(ValueError, match="structures='scale'"):
        render(Features(structures="scale"), np.random.default_rng(0))


@pytest.mark.parametrize("tone", [0, 7, "2", True, 2.0])
def test_bad_skin_tone(tone):
    with pytest.raises(ValueError, match="skin_tone"):
        render(BROWN, np.random.default_rng(0), skin_tone=tone)
    with pytest.raises(ValueError, match="skin_tone"):
        skin_rgb(tone)


def test_bad_modality_and_size():
    with pytest.raises(ValueError, match="'histology'"):
        render(BROWN, np.random.default_rng(0), modality="histology")
    with pytest.raises(ValueError, match="size=16"):
        render(BROWN, np.random.default_rng(0), size=16)


def test_skin_darkens_with_fitzpatrick_type():
    lum = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in map(skin_rgb, range(1, 7))]
    assert all(a > b + 15 for a, b in zip(lum, lum[1:], strict=False))
    # and the rendered background follows: the ring inside the field stop
    ring_means = []
    for tone in (1, 6):
        img = pixels(Features(size="small"), 3, skin_tone=tone)
        n = img.shape[0]
        yy, xx = np.mgrid[0:n, 0:n]
        r = np.hypot(xx - n / 2, yy - n / 2)
        ring_means.append(img[(r > 0.40 * n) & (r < 0.46 * n)].mean())
    assert ring_means[0] > ring_means[1] + 80


# --- every vocabulary value is visible ---------------------------------------------------------


def changed_pixels(a: np.ndarray, b: np.ndarray, level: int = 20) -> int:
    return int((np.abs(a - b).max(axis=2) > level).sum())


@pytest.mark.parametrize("attr", ["structures", "surface"])
def test_every_structure_and_surface_changes_pixels(attr):
    # Child generators per structure: adding one leaves everything else identical, so the diff
    # is that structure alone. "Visible" = at least 40 px (a 7x7 mark) change by > 20 levels,
    # down to a small clinical lesion on the darkest skin. The one exception is "homogeneous
    # pattern" on Fitzpatrick VI: a one-colour light-brown lesion there has next to no texture
    # to flatten (its own test below checks what it does).
    cases = (("dermoscopic", 2, 1), ("clinical", 5, 2), ("clinical", 6, 3))
    for modality, tone, seed in cases:
        base = pixels(BROWN, seed, modality=modality, skin_tone=tone)
        for value in VOCABULARY[attr]:
            if value == "homogeneous pattern" and tone == 6:
                continue
            f = Features(colours=("light brown",), **{attr: (value,)})
            n = changed_pixels(base, pixels(f, seed, modality=modality, skin_tone=tone))
            assert n >= 40, (value, modality, tone, n)


def test_homogeneous_pattern_flattens_colour_zones():
    zoned = Features(colours=("light brown", "dark brown", "black"))
    flat = Features(colours=zoned.colours, structures=("homogeneous pattern",))
    for seed in range(3):
        for tone in (1, 3):
            spread = []
            for f in (zoned, flat):
                img = pixels(f, seed, skin_tone=tone)
                spread.append(img[lesion_mask(img)].std(axis=0).mean())
            assert spread[1] < 0.5 * spread[0], (seed, tone, spread)


def test_adding_a_structure_only_adds_it():
    # Same seed, structure present or not: pixels away from the lesion are untouched except for
    # JPEG ringing (level <= 20).
    a = pixels(BROWN, 5)
    b = pixels(Features(colours=("light brown",), structures=("milia-like cysts",)), 5)
    n = a.shape[0]
    assert changed_pixels(a[:, : n // 8], b[:, : n // 8]) == 0


@pytest.mark.parametrize("attr", ["symmetry", "border", "elevation", "size"])
def test_every_single_valued_feature_changes_pixels(attr):
    imgs = {v: pixels(Features(colours=("dark brown",), **{attr: v}), 4) for v in VOCABULARY[attr]}
    vals = list(imgs)
    for i, a in enumerate(vals):
        for b in vals[i + 1 :]:
            assert changed_pixels(imgs[a], imgs[b]) >= 40, (a, b)


def test_every_colour_changes_the_lesion_colour():
    means = {c: centre_disc(pixels(Features(colours=(c,)), 6)).mean(axis=0)
             for c in VOCABULARY["colours"]}  # fmt: skip
    names = list(means)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.linalg.norm(means[a] - means[b]) > 15, (a, b, means[a], means[b])


# --- pixel statistics follow the features ------------------------------------------------------


def test_dark_blue_palette_is_darker_and_bluer_than_light_brown():
    for seed in range(3):
        for tone in (1, 2, 3):
            img = pixels(Features(colours=("black", "blue-grey")), seed, skin_tone=tone)
            dark = img[lesion_mask(img)].mean(axis=0)
            img = pixels(Features(colours=("light brown",)), seed, skin_tone=tone)
            light = img[lesion_mask(img)].mean(axis=0)
            assert dark.mean() < light.mean() - 30, (seed, tone, dark, light)
            assert dark[2] - dark[0] > light[2] - light[0] + 30, (seed, tone, dark, light)  # B-R


def test_vascular_palette_is_red():
    img = centre_disc(pixels(Features(colours=("red", "purple"), structures=("lacunae",)), 2))
    r, g, b = img.mean(axis=0)
    assert r > g + 60 and r > b + 20


def test_white_structures_brighten_the_lesion_centre():
    patched = Features(colours=("light brown",), structures=("central white patch",))
    plain = centre_disc(pixels(BROWN, 9)).mean()
    patch = centre_disc(pixels(patched, 9)).mean()
    assert patch > plain + 40


def test_symmetric_outline_is_more_mirror_symmetric():
    def score(symmetry: str) -> float:
        f = Features(symmetry=symmetry, size="small", colours=("dark brown",))
        return float(np.mean([mirror_score(lesion_mask(pixels(f, s))) for s in range(8)]))

    sym, asym = score("symmetric"), score("asymmetric")
    assert sym > 0.9
    assert sym > asym + 0.08, (sym, asym)


def transition_band(img: np.ndarray) -> float:
    """Width of the lesion-to-skin transition: pixels 25-75% of the way from skin colour to
    lesion colour, over the square root of the lesion area (so it does not scale with size)."""
    img = img.astype(float)
    n = img.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - n / 2, yy - n / 2)
    skin = np.median(img[(r > 0.40 * n) & (r < 0.46 * n)], axis=0)
    lesion = np.median(centre_disc(img), axis=0)
    t = np.linalg.norm(img - skin, axis=2) / np.linalg.norm(lesion - skin)
    t[r > 0.47 * n] = 0
    return float(((t > 0.25) & (t < 0.75)).sum() / np.sqrt((t >= 0.5).sum()))


def test_ill_defined_border_has_a_wider_transition():
    # A sharp edge is 1-2 px wide: band ~ perimeter * 1.5 px / sqrt(area) ~ 2.7 / 1.77 * 1.5.
    for seed in range(3):
        for tone in (1, 5):
            sharp = transition_band(pixels(Features(colours=("dark brown",)), seed, skin_tone=tone))
            fuzzy = transition_band(pixels(Features(border="ill-defined", colours=("dark brown",)),
                                           seed, skin_tone=tone))  # fmt: skip
            assert sharp < 4 and fuzzy > 3 * sharp, (seed, tone, sharp, fuzzy)


def test_size_orders_lesion_area():
    area = {v: np.mean([lesion_mask(pixels(Features(size=v, colours=("dark brown",)), s, modality="clinical")).sum()
                        for s in range(4)]) for v in ("small", "medium", "large")}  # fmt: skip
    assert area["small"] * 1.5 < area["medium"] and area["medium"] * 1.4 < area["large"]


def corners(im: np.ndarray) -> np.ndarray:
    return np.concatenate([im[:6, :6], im[:6, -6:], im[-6:, :6], im[-6:, -6:]])


def test_vignette_only_in_dermoscopic_and_clinical_lesion_is_smaller():
    for seed in range(3):
        derm = pixels(BROWN, seed, modality="dermoscopic", skin_tone=3)
        clin = pixels(BROWN, seed, modality="clinical", skin_tone=3)
        assert corners(derm).mean() < 25  # the dermatoscope's black field stop
        assert corners(clin).mean() > 100  # Fitzpatrick III skin (~160) right to the corner
    # The clinical photo shows the lesion smaller (less magnification).
    dark = Features(colours=("dark brown",))
    d = np.mean([lesion_mask(pixels(dark, s)).sum() for s in range(3)])
    c = np.mean([lesion_mask(pixels(dark, s, modality="clinical")).sum() for s in range(3)])
    assert c < 0.7 * d  # clinical lesions are drawn at 0.75 of the dermoscopic radius


def test_every_rule_renders_in_both_modalities():
    # Non-strict load: the rule book may be mid-expansion; every rule present must render.
    book = load_rules(load_taxonomy(), KNOWLEDGE_DIR / "rules.yaml")
    for node, rule in book.rules.items():
        for modality in MODALITIES:
            img = render(rule.features, np.random.default_rng(0), modality=modality, skin_tone=4)
            assert img.size == (128, 128), node


def test_colour_rgb_tracks_skin_tone():
    # Brown pigment on darker skin stays darker than that skin.
    for tone in range(1, 7):
        skin = sum(skin_rgb(tone))
        assert sum(lesions.colour_rgb("dark brown", tone)) < skin
        assert sum(lesions.colour_rgb("light brown", tone)) < skin
