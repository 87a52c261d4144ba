"""Trustworthiness beyond accuracy: faithful rationales, calibrated confidence with deferral,
costly mistakes and fairness by skin type (docs/trust.md).

Every metric here takes evaluation records (``evaluation.answer_questions``) and returns its value
with the number it was computed on; what cannot be scored (no ``<thinking>``, no vocabulary
feature stated, no option probabilities) is counted apart, never scored as zero or as perfect.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict

import numpy as np

from skinr1.intervals import MIN_N, accuracy_ci
from skinr1.rewards import THINK, extract_tags
from skinr1.rules import Features

SINGLE = ("symmetry", "border", "elevation", "size")
LISTED = ("colours", "structures", "surface")
# A clause with one of these words states its features as absent ("no blue-white veil").
_NEGATION = re.compile(r"\b(?:no|not|without|absent|lacks?|lacking|rather than)\b", re.I)
_CLAUSE = re.compile(r"[.;:!?]|\bversus\b|\bvs\.?", re.I)
TARGET_ACCURACY = 0.90  # the accuracy a clinic asks of the answers it does not refer


# --- features stated in a rationale --------------------------------------------------------------
def feature_keys(f: Features) -> frozenset[str]:
    """A lesion's features as ``attribute:value`` keys (every attribute, defaults included)."""
    d = asdict(f)
    keys = {f"{a}:{d[a]}" for a in SINGLE}
    keys |= {f"{a}:{v}" for a in LISTED for v in d[a]}
    return frozenset(keys)


def _phrases(vocabulary: Mapping[str, Sequence[str]]) -> list[tuple[re.Pattern, str]]:
    """(pattern, key) pairs, longest phrase first, so "blue-white veil" is read before "blue" and
    "irregular dots and globules" before "irregular"."""
    out = []
    for attr, values in vocabulary.items():
        for v in values:
            words = re.escape(v).replace(r"\ ", r"[\s-]+")
            if attr == "border":  # "regular" alone is too common a word; a border is named
                pat = rf"\b{words}\s+(?:border|edge|margin)s?\b"
            elif attr == "surface":
                pat = rf"\b{words}(?:\s+surface)?\b"
            else:
                pat = rf"(?<![\w-]){words}(?![\w-])"
            out.append((re.compile(pat, re.I), f"{attr}:{v}", len(v)))
    out.sort(key=lambda t: -t[2])
    return [(p, k) for p, k, _ in out]


class FeatureReader:
    """Reads the vocabulary features a rationale states as present.

    Diagnosis names are blanked first ("nodular melanoma" states no nodule), then phrases are
    matched longest first and blanked once read. A clause that negates ("no", "without",
    "absent") states its features as absent; they are returned apart.
    """

    def __init__(self, vocabulary: Mapping[str, Sequence[str]], names: Iterable[str] = ()):
        self.patterns = _phrases(vocabulary)
        names = sorted({n for n in names if n}, key=len, reverse=True)
        # One lookaround around the whole alternation: the same matches as one per name, ~10x
        # faster over a taxonomy's ~370 names (re tries every alternative at each position).
        alternatives = "|".join(re.escape(n) for n in names)
        self.names = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.I) if names else None

    def read(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        """(stated present, stated absent) feature keys of ``text``."""
        if self.names is not None:
            text = self.names.sub(lambda m: "#" * len(m.group(0)), text)
        present: set[str] = set()
        absent: set[str] = set()
        for clause in _CLAUSE.split(text):
            negated = _NEGATION.search(clause) is not None
            for pattern, key in self.patterns:
                if pattern.search(clause):
                    (absent if negated else present).add(key)
                    clause = pattern.sub(lambda m: "#" * len(m.group(0)), clause)
        return frozenset(present), frozenset(absent - present)


def thinking_of(response: str) -> str | None:
    """The text of the one ``<thinking>`` block, else None (no block, or several)."""
    blocks = extract_tags(response, THINK)
    return blocks[0] if len(blocks) == 1 else None


def faithfulness(
    stated: frozenset[str], truth: frozenset[str], scope: frozenset[str] | None = None
) -> tuple[float, float]:
    """(precision, recall) of the stated features against the image's true features. ``scope``
    limits both to what the annotation can record (Derm7pt's checklist records a few structures;
    a stated colour can be neither confirmed nor refuted there)."""
    if scope is not None:
        stated, truth = stated & scope, truth & scope
    hit = len(stated & truth)
    precision = hit / len(stated) if stated else math.nan
    recall = hit / len(truth) if truth else math.nan
    return precision, recall


def consistency(stated: frozenset[str], rule: frozenset[str]) -> float:
    """The share of stated features that the chosen diagnosis's rule lists (NaN for none)."""
    return len(stated & rule) / len(stated) if stated else math.nan


def supports(stated: frozenset[str], rule: frozenset[str]) -> bool:
    """True when the rationale is an argument for the diagnosis it reaches: every stated feature
    is in that diagnosis's rule, and at least one of them is a colour, structure or surface (the
    single-valued defaults — symmetric, flat, regular border — fit most diagnoses)."""
    listed = {k for k in stated if k.split(":", 1)[0] in LISTED}
    return bool(listed) and stated <= rule


def rationale_scores(
    records: Sequence[dict],
    reader: FeatureReader,
    truth_of: Mapping[str, frozenset[str] | None],
    rule_of: Mapping[str, frozenset[str]],
    scope_of: Mapping[str, frozenset[str] | None] | None = None,
) -> tuple[list[dict], Counter]:
    """One score per record that can be scored, and the count of each reason one cannot.

    ``truth_of`` maps a record id to its image's features (None: not annotated); ``rule_of``
    maps an option text to its rule's feature keys (an option without a rule cannot be checked
    for support). Reasons not scored: ``no thinking``, ``no vocabulary feature``, ``no annotation``.
    """
    scope_of = scope_of or {}
    scored, skipped = [], Counter()
    for r in records:
        thinking = thinking_of(r["response"])
        if thinking is None:
            skipped["no thinking"] += 1
            continue
        stated, _ = reader.read(thinking)
        if not stated:
            skipped["no vocabulary feature"] += 1
            continue
        truth = truth_of.get(r["id"])
        if truth is None:
            skipped["no annotation"] += 1
            continue
        p, rc = faithfulness(stated, truth, scope_of.get(r["id"]))
        chosen = _chosen_text(r)
        rule = rule_of.get(chosen) if chosen is not None else None
        scored.append({
            "id": r["id"], "dataset": r["dataset"], "precision": p, "recall": rc,
            "supports": None if rule is None else supports(stated, rule),
            "stated": sorted(stated), "correct": r["correct"],
        })  # fmt: skip
    return scored, skipped


def _chosen_text(r: dict) -> str | None:
    if r.get("strict") is None:
        return None
    return dict(zip(r["letters"], r["options"], strict=True))[r["strict"]]


# --- calibration and deferral ---------------------------------------------------------------------
def answer_confidence(r: dict) -> float | None:
    """The probability the model gave the option it answered; 0 for an invalid answer (a clinic
    refers those first); None when the record has no option probabilities."""
    probs = r.get("option_probs")
    if probs is None:
        return None
    return float(probs["probs"].get(r["strict"], 0.0)) if r.get("strict") else 0.0


def reliability(conf: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: each bin's range, count, mean confidence and accuracy (the
    reliability diagram); empty bins are left out. The top bin includes 1.0."""
    c, y = np.asarray(conf, float), np.asarray(correct, float)
    idx = np.minimum((c * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = idx == b
        if m.any():
            out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int(m.sum()),
                        "confidence": float(c[m].mean()), "accuracy": float(y[m].mean())})  # fmt: skip
    return out


def ece(conf: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over bins."""
    bins = reliability(conf, correct, n_bins)
    n = sum(b["n"] for b in bins)
    return sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / n if n else math.nan


def risk_coverage(conf: Sequence[float], correct: Sequence[bool]) -> dict:
    """The risk-coverage curve of answering the most confident questions first.

    Ties in confidence are answered together or not at all, so the curve's points sit at the
    distinct thresholds; ``aurc`` is the mean risk over k = 1..n answered questions with ties in
    random order (its expectation, exactly: within a tie group the errors accrue linearly).
    ``coverage_at_target`` is the largest coverage at a threshold whose answered questions reach
    ``TARGET_ACCURACY``, and ``threshold`` that confidence (None when no threshold does).
    """
    c, y = np.asarray(conf, float), np.asarray(correct, float)
    n = len(c)
    if n == 0:
        raise ValueError("risk_coverage needs at least one answer")
    order = np.argsort(-c, kind="stable")
    c, y = c[order], y[order]
    points, total, k0, e0, best = [], 0.0, 0, 0.0, (0.0, None)
    for t in np.unique(c)[::-1]:
        group = y[c == t]
        g, e = len(group), float(len(group) - group.sum())
        ks = np.arange(k0 + 1, k0 + g + 1)
        total += float(((e0 + (ks - k0) * e / g) / ks).sum())
        k0, e0 = k0 + g, e0 + e
        cov, acc = k0 / n, 1 - e0 / k0
        points.append({"threshold": float(t), "coverage": cov, "risk": 1 - acc})
        if acc >= TARGET_ACCURACY - 1e-12 and cov > best[0]:
            best = (cov, float(t))
    return {"points": points, "aurc": total / n, "coverage_at_target": best[0],
            "threshold": best[1], "target": TARGET_ACCURACY}  # fmt: skip


# --- costly mistakes -------------------------------------------------------------------------------
CONDITIONS = ("benign", "malignant", "precancerous in situ")


def called_condition(r: dict, condition_of: Mapping[str, str]) -> str | None:
    """The lesion condition a record's answer asserts: the chosen option on the lesion set, the
    chosen diagnosis's condition elsewhere; None for an invalid answer or an option off the tree."""
    text = _chosen_text(r)
    if text is None:
        return None
    return text if r["kind"] == "lesion" else condition_of.get(text)


def missed_malignancy(records: Sequence[dict], condition_of: Mapping[str, str], *,
                      seed: int, n_boot: int = 5000) -> dict:  # fmt: skip
    """The share of malignant or precancerous lesions called benign, with a 95% interval, over
    all of them (an invalid answer is no call: counted as ``no_call``, not as a miss)."""
    risky = [r for r in records if r["malignancy"] in CONDITIONS[1:]]
    if not risky:
        return {"value": math.nan, "n": 0, "no_call": 0, "informative": False}
    calls = [called_condition(r, condition_of) for r in risky]
    missed = [c == "benign" for c in calls]
    ci = accuracy_ci(missed, [r["dataset"] for r in risky], n_boot=n_boot, seed=seed)["pooled"]
    return {**ci, "no_call": sum(c is None for c in calls)}


def condition_confusion(records: Sequence[dict], condition_of: Mapping[str, str]) -> dict:
    """True condition -> called condition (or ``invalid``/``off tree``) -> count."""
    out: dict[str, Counter] = {c: Counter() for c in CONDITIONS}
    for r in records:
        call = called_condition(r, condition_of)
        said = call if call else ("invalid" if r.get("strict") is None else "off tree")
        out.setdefault(r["malignancy"], Counter())[said] += 1
    return {k: dict(v) for k, v in out.items()}


# --- fairness by skin type -------------------------------------------------------------------------
def skin_type_accuracy(records: Sequence[dict], *, seed: int, n_boot: int = 5000) -> dict:
    """Accuracy per Fitzpatrick type with 95% intervals (records without a type are counted as
    ``unknown``), and the gap between the best and the worst type of at least ``MIN_N`` answers,
    with a bootstrap interval of that difference."""
    by: dict[int, list[dict]] = {}
    unknown = 0
    for r in records:
        if r.get("skin_type") is None:
            unknown += 1
        else:
            by.setdefault(int(r["skin_type"]), []).append(r)
    per = {
        t: accuracy_ci(
            [r["correct"] for r in rs], [r["dataset"] for r in rs], n_boot=n_boot, seed=seed
        )["pooled"]  # fmt: skip
        for t, rs in sorted(by.items())
    }
    large = {t: v for t, v in per.items() if v["n"] >= MIN_N}
    gap = None
    if len(large) >= 2:
        best = max(large, key=lambda t: large[t]["value"])
        worst = min(large, key=lambda t: large[t]["value"])
        gap = {"best": best, "worst": worst, **_gap_ci(by[best], by[worst], seed, n_boot)}
    return {"per_type": per, "unknown": unknown, "gap": gap}


def _gap_ci(a: list[dict], b: list[dict], seed: int, n_boot: int) -> dict:
    """Accuracy of group a minus group b, bootstrapped independently (different questions)."""
    rng = np.random.default_rng(seed)
    xa = np.asarray([r["correct"] for r in a], float)
    xb = np.asarray([r["correct"] for r in b], float)
    ra = xa[rng.integers(0, len(xa), (n_boot, len(xa)))].mean(axis=1)
    rb = xb[rng.integers(0, len(xb), (n_boot, len(xb)))].mean(axis=1)
    lo, hi = np.percentile(ra - rb, [2.5, 97.5])
    return {"value": float(xa.mean() - xb.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "n": len(xa) + len(xb)}  # fmt: skip


# --- the report of notebook 05 and metrics/trust.json ---------------------------------------------
def _mean_ci(values: Sequence[float], datasets: Sequence[str], seed: int, n_boot: int) -> dict:
    if not values:
        return {"value": math.nan, "n": 0, "informative": False}
    return accuracy_ci(list(values), list(datasets), n_boot=n_boot, seed=seed)["pooled"]


def _statistic_ci(fn, conf: np.ndarray, y: np.ndarray, seed: int, n_boot: int) -> dict:
    """A statistic of (confidence, correct) with a 95% bootstrap interval over the questions."""
    rng = np.random.default_rng(seed)
    reps = [fn(conf[i], y[i]) for i in rng.integers(0, len(y), (n_boot, len(y)))]
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return {"value": float(fn(conf, y)), "ci_low": float(lo), "ci_high": float(hi),
            "n": len(y), "informative": len(y) >= MIN_N}  # fmt: skip


class TrustKnowledge:
    """What the metrics need from the knowledge base: feature keys of each option's rule, the
    condition of each option, the image's true features and the reader of rationales.

    ``truth`` is ``rules`` (the image shows its label's rule: exact on the demo data, whose
    images are drawn from those rules) or ``annotations`` (the row's annotated features only,
    e.g. Derm7pt's checklist at paper scale; rows without them are not scored).
    """

    def __init__(self, taxonomy, rules, vocabulary: Mapping[str, Sequence[str]], truth: str):
        if truth not in ("rules", "annotations"):
            raise ValueError(
                f"evaluation.feature_truth must be rules or annotations, got {truth!r}"
            )
        self.taxonomy, self.rules, self.truth = taxonomy, rules, truth
        names = [n for n in taxonomy.nodes if n != taxonomy.root]
        names += [s for n in names for s in taxonomy.synonyms(n)]
        self.reader = FeatureReader(vocabulary, names)

    def rule_keys(self, text: str) -> frozenset[str] | None:
        node = self.taxonomy.resolve(text)
        if node is None:
            return None
        try:
            return feature_keys(self.rules.rule_for(node, self.taxonomy).features)
        except KeyError:
            return None

    def condition(self, text: str) -> str | None:
        node = self.taxonomy.resolve(text)
        return self.taxonomy.malignancy(node) if node is not None else None

    def image_truth(self, r: dict) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """(true features, scope) of a record's image."""
        if self.truth == "annotations":
            feats = r.get("features")
            if feats is None:
                return None, None
            from skinr1.datasets.derm7pt import ANNOTATED_VOCABULARY

            return frozenset(feats), frozenset(ANNOTATED_VOCABULARY)
        node = r.get("node")
        keys = self.rule_keys(node) if node and node in self.taxonomy else None
        return keys, None

    def score_rationales(self, recs: Sequence[dict]) -> tuple[list[dict], Counter]:
        """``rationale_scores`` of the records, against each image's truth (and scope) and
        each offered option's rule."""
        texts = {t for r in recs for t in r["options"]}
        rule_of = {t: k for t in texts if (k := self.rule_keys(t)) is not None}
        truth, scope = {}, {}
        for r in recs:
            truth[r["id"]], scope[r["id"]] = self.image_truth(r)
        return rationale_scores(recs, self.reader, truth, rule_of, scope)


def trust_of(records: Sequence[dict], kb: TrustKnowledge, *, seed: int,
             n_boot: int = 2000) -> dict:  # fmt: skip
    """Per question set and model: faithfulness, calibration, deferral, costly mistakes and
    accuracy by skin type, each with its n, interval and what could not be scored."""
    out: dict[str, dict[str, dict]] = {}
    texts = {t for r in records for t in r["options"]}
    condition_of = {t: c for t in texts if (c := kb.condition(t)) is not None}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["set"], r["model"]), []).append(r)
    for (kind, model), recs in groups.items():
        scored, skipped = kb.score_rationales(recs)
        prec = [s for s in scored if not math.isnan(s["precision"])]
        rec_ = [s for s in scored if not math.isnan(s["recall"])]
        sup = [s for s in scored if s["supports"] is not None]
        entry = {
            "n": len(recs),
            "faithfulness": {
                "precision": _mean_ci([s["precision"] for s in prec], [s["dataset"] for s in prec],
                                      seed, n_boot),
                "recall": _mean_ci([s["recall"] for s in rec_], [s["dataset"] for s in rec_],
                                   seed, n_boot),
                "supports": _mean_ci([float(s["supports"]) for s in sup],
                                     [s["dataset"] for s in sup], seed, n_boot),
                "not_scored": dict(skipped),
            },
            "missed_malignancy": missed_malignancy(recs, condition_of, seed=seed, n_boot=n_boot),
            "missed_malignancy_by_dataset": {
                ds: missed_malignancy([r for r in recs if r["dataset"] == ds], condition_of,
                                      seed=seed, n_boot=n_boot)
                for ds in sorted({r["dataset"] for r in recs})
            },
            "confusion": condition_confusion(recs, condition_of),
            "skin_type": skin_type_accuracy(recs, seed=seed, n_boot=n_boot),
        }  # fmt: skip
        conf = [answer_confidence(r) for r in recs]
        have = [(c, r["correct"]) for c, r in zip(conf, recs, strict=True) if c is not None]
        calibration: dict = {"not_scored": len(recs) - len(have)}
        if have:
            c = np.asarray([h[0] for h in have])
            y = np.asarray([h[1] for h in have], float)
            valid = np.asarray([r.get("strict") is not None for r, cf in zip(recs, conf, strict=True)
                                if cf is not None])  # fmt: skip
            rc = risk_coverage(c, y)
            calibration.update({
                # ECE over the answers that name an option: an invalid answer states no confidence
                "ece": _statistic_ci(ece, c[valid], y[valid], seed, n_boot) if valid.any()
                else {"value": math.nan, "n": 0, "informative": False},
                "reliability": reliability(c[valid], y[valid]),
                "aurc": _statistic_ci(lambda a, b: risk_coverage(a, b)["aurc"], c, y, seed,
                                      min(n_boot, 500)),
                "coverage_at_90": rc["coverage_at_target"], "threshold_90": rc["threshold"],
                "curve": rc["points"],
            })  # fmt: skip
        entry["calibration"] = calibration
        out.setdefault(kind, {})[model] = entry
    return out


def headline(trust: Mapping[str, Mapping[str, dict]]) -> dict[str, dict]:
    """``metrics/trust.json``'s per-model summary: faithfulness, calibration and skin type on the
    disease set, missed malignancy on the lesion set (the direct call of the condition)."""
    disease, lesion = trust.get("disease", {}), trust.get("lesion", {})
    out = {}
    for model, d in disease.items():
        cal = d["calibration"]
        st = d["skin_type"]
        out[model] = {
            "faithfulness_precision": d["faithfulness"]["precision"]["value"],
            "faithfulness_recall": d["faithfulness"]["recall"]["value"],
            "faithfulness_supports": d["faithfulness"]["supports"]["value"],
            "ece": cal.get("ece", {}).get("value", math.nan),
            "aurc": cal.get("aurc", {}).get("value", math.nan),
            "coverage_at_90": cal.get("coverage_at_90", math.nan),
            "threshold_90": cal.get("threshold_90"),
            "malignant_missed_rate": lesion.get(model, d)["missed_malignancy"]["value"],
            "skin_type_acc": {str(t): v["value"] for t, v in st["per_type"].items()},
            "skin_type_gap": st["gap"]["value"] if st["gap"] else math.nan,
        }
    return out


def _cell(ci: dict | None) -> str:
    if not ci or ci.get("n", 0) == 0 or math.isnan(ci["value"]):
        return "not scored"
    if "ci_low" not in ci:
        return f"{ci['value']:.3f} (n = {ci['n']})"
    flag = "" if ci.get("informative", True) else ", uninformative"
    return f"{ci['value']:.3f} [{ci['ci_low']:.3f}, {ci['ci_high']:.3f}] (n = {ci['n']}{flag})"


def trust_table(trust: Mapping[str, Mapping[str, dict]], kind: str, labels: Mapping[str, str]):
    """One row per model of a question set: each trust metric with its 95% interval and n, and
    what could not be scored."""
    import pandas as pd

    rows = {}
    for model, d in trust.get(kind, {}).items():
        f, cal = d["faithfulness"], d["calibration"]
        rows[labels.get(model, model)] = {
            "stated-feature precision": _cell(f["precision"]),
            "stated-feature recall": _cell(f["recall"]),
            "rationale supports its answer": _cell(f["supports"]),
            "rationale not scored": ", ".join(f"{k} {v}" for k, v in f["not_scored"].items()) or "0",
            "ECE": _cell(cal.get("ece")),
            "AURC": _cell(cal.get("aurc")),
            "coverage at 90% accuracy": cal.get("coverage_at_90", math.nan),
            "answer when confidence >=": cal.get("threshold_90"),
            "malignant/precancerous called benign": _cell(d["missed_malignancy"]),
        }  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def skin_type_table(trust: Mapping[str, Mapping[str, dict]], kind: str, labels: Mapping[str, str]):
    """Accuracy per Fitzpatrick type per model, and the best-worst gap with its interval."""
    import pandas as pd

    rows = {}
    for model, d in trust.get(kind, {}).items():
        st = d["skin_type"]
        row = {f"type {t}": _cell(v) for t, v in st["per_type"].items()}
        gap = st["gap"]
        row["gap (best - worst)"] = (
            f"type {gap['best']} - type {gap['worst']}: {_cell(gap)}"
            if gap
            else "fewer than 2 types"
        )
        row["no skin type"] = st["unknown"]
        rows[labels.get(model, model)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def confusion_table(trust: Mapping[str, Mapping[str, dict]], kind: str, model: str):
    """True lesion condition (rows) against the condition the answer asserts (columns)."""
    import pandas as pd

    cm = trust[kind][model]["confusion"]
    cols = [*CONDITIONS, "invalid", "off tree"]
    frame = pd.DataFrame.from_dict(cm, orient="index").reindex(index=list(CONDITIONS), columns=cols)
    return frame.fillna(0).astype(int)


def missed_table(trust: Mapping[str, Mapping[str, dict]], kind: str, labels: Mapping[str, str]):
    """Per model and dataset: the share of malignant or precancerous lesions called benign."""
    import pandas as pd

    rows = {}
    for model, d in trust.get(kind, {}).items():
        row = {ds: _cell(v) for ds, v in d["missed_malignancy_by_dataset"].items()}
        row["all"] = _cell(d["missed_malignancy"])
        row["no call (invalid)"] = d["missed_malignancy"].get("no_call", 0)
        rows[labels.get(model, model)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def contrasting_cases(records: Sequence[dict], kb: TrustKnowledge, *, model: str,
                      kind: str = "disease") -> tuple[dict, dict] | None:  # fmt: skip
    """A model's most and least faithful scored rationale on one set, to show side by side:
    highest stated-feature precision (then support, recall, id), and lowest (then id). None when
    fewer than two rationales can be scored."""
    recs = [r for r in records if r["model"] == model and r["set"] == kind]
    scored = [s for s in kb.score_rationales(recs)[0] if not math.isnan(s["precision"])]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda s: (s["precision"], bool(s["supports"]), s["recall"], s["id"]))
    worst = min(scored, key=lambda s: (s["precision"], s["id"]))
    by_id = {r["id"]: r for r in recs}
    return tuple(
        {**s, "record": by_id[s["id"]], "truth": sorted(kb.image_truth(by_id[s["id"]])[0] or ())}
        for s in (best, worst)
    )  # type: ignore[return-value]


def compare_runs(a: Sequence[dict], b: Sequence[dict], kb: TrustKnowledge, *, model: str,
                 kind: str = "disease", seed: int, n_boot: int = 5000) -> dict:  # fmt: skip
    """Run a minus run b for one model on one set, paired over the same questions: accuracy,
    stated-feature precision and recall, and support, each on the questions both runs could
    score, with 95% paired stratified-bootstrap intervals (e.g. GRPO with and without
    R_consistency)."""
    from skinr1.intervals import paired_difference

    def scores(records):
        recs = [r for r in records if r["model"] == model and r["set"] == kind]
        return {r["id"]: r for r in recs}, {s["id"]: s for s in kb.score_rationales(recs)[0]}

    (ra, sa), (rb, sb) = scores(a), scores(b)
    ids = sorted(set(ra) & set(rb))
    if not ids:
        raise ValueError(f"the two runs share no {kind} question answered by {model!r}")
    out = {"accuracy": paired_difference([ra[i]["correct"] for i in ids],
                                         [rb[i]["correct"] for i in ids],
                                         [ra[i]["dataset"] for i in ids], n_boot=n_boot, seed=seed)}  # fmt: skip
    for key in ("precision", "recall", "supports"):
        both = [i for i in ids if i in sa and i in sb
                and not _missing(sa[i][key]) and not _missing(sb[i][key])]  # fmt: skip
        diff = [float(sa[i][key]) - float(sb[i][key]) for i in both]
        out[key] = _mean_ci(diff, [ra[i]["dataset"] for i in both], seed, n_boot)
        out[key]["a"] = float(np.mean([float(sa[i][key]) for i in both])) if both else math.nan
        out[key]["b"] = float(np.mean([float(sb[i][key]) for i in both])) if both else math.nan
    out["accuracy"]["a"] = float(np.mean([ra[i]["correct"] for i in ids]))
    out["accuracy"]["b"] = float(np.mean([rb[i]["correct"] for i in ids]))
    return out


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
