"""The knowledge base: dataset coverage, the malignancy convention, and invariants that fail loudly.

Raw labels below are copied from /work/shared/reference/datasets.md (one test per dataset), so a
label missing from datasets.yaml fails here. Broken knowledge bases are written to tmp_path as
real YAML files; each error must name the file and the offending entry.
"""

from __future__ import annotations

import copy
import re
import time

import networkx as nx
import pytest
import yaml

import skinr1.taxonomy as taxonomy_module
from skinr1.ddx import load_ddx, statistics
from skinr1.rules import check_ddx_features, load_rules
from skinr1.taxonomy import (
    KNOWLEDGE_DIR,
    MALIGNANCY,
    KnowledgeError,
    load_taxonomy,
    normalise,
    unmapped_labels,
)

PIS = "precancerous in situ"


@pytest.fixture(scope="module")
def kb():
    tax = load_taxonomy()
    return tax, load_ddx(tax), load_rules(tax)


def _expect(tax, dataset: str, expected: dict[str, str]) -> None:
    got = {raw: tax.map_label(dataset, raw) for raw in expected}
    assert got == expected


# --- coverage: one test per dataset ----------------------------------------------------------
def test_ham10000_dx_codes_and_isic2018_headers(kb):
    tax = kb[0]
    expected = {
        "akiec": "actinic keratosis",
        "bcc": "basal cell carcinoma",
        "bkl": "benign keratosis-like lesion",
        "df": "dermatofibroma",
        "mel": "melanoma",
        "nv": "melanocytic nevus",
        "vasc": "vascular lesion",
    }
    _expect(tax, "HAM10000", expected)
    # The ISIC 2018 Task 3 one-hot header names the same classes in upper case.
    header = "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC".split(",")[1:]
    assert [tax.map_label("HAM10000", h) for h in header] == [expected[h.lower()] for h in header]


def test_pad_ufes20_diagnostic_codes(kb):
    _expect(kb[0], "PAD-UFES-20", {
        "ACK": "actinic keratosis", "BCC": "basal cell carcinoma", "MEL": "melanoma",
        "NEV": "melanocytic nevus", "SCC": "squamous cell carcinoma", "SEK": "seborrheic keratosis",
    })  # fmt: skip


def test_bcn20000_diagnosis_codes(kb):
    _expect(kb[0], "BCN20000", {
        "NV": "melanocytic nevus", "MEL": "melanoma", "SCC": "squamous cell carcinoma",
        "BKL": "benign keratosis-like lesion", "BCC": "basal cell carcinoma",
        "AK": "actinic keratosis", "DF": "dermatofibroma", "VASC": "vascular lesion",
    })  # fmt: skip


# datasets.md §4, integer label order.
DERM12345_CODES = (
    "acb cb ccb mcb bdb db ajb cjb jb acd cd ccd ajd jd srjd rd isl ls sl lk sk df ha la pg "
    "angk sa ak alm anm lm lmm mel bcc bd ch mpd scc dfsp ks"
).split()


def test_derm12345_all_40_codes_and_its_own_levels(kb):
    tax = kb[0]
    assert len(DERM12345_CODES) == 40
    assert unmapped_labels(tax, "derm12345", DERM12345_CODES) == []
    assert all(tax.label_status("derm12345", c) == "mapped" for c in DERM12345_CODES)
    # A few leaves by name, including the melanoma family of datasets.md.
    _expect(tax, "derm12345", {
        "srjd": "spitz nevus", "isl": "ink-spot lentigo", "alm": "acral lentiginous melanoma",
        "anm": "acral nodular melanoma", "lmm": "lentigo maligna melanoma", "mpd":
        "mammary paget disease", "ks": "kaposi sarcoma", "dfsp": "dermatofibrosarcoma protuberans",
    })  # fmt: skip
    levels = tax.hierarchy["derm12345"]["levels"]
    assert len(levels["super class"]) == 5 and len(levels["main class"]) == 15
    for groups in levels.values():  # each level partitions the 40 codes
        codes = [c for g in groups.values() for c in g["codes"]]
        assert sorted(codes) == sorted(DERM12345_CODES)
    # The dataset's "indeterminate" super class is our precancerous in situ.
    assert levels["super class"]["nonmelanocytic indeterminate"]["codes"] == ["ak"]
    assert set(tax.hierarchy["derm12345"]["malignancy_exceptions"]) == {"lm", "bd", "ch"}


DERM7PT_DIAGNOSES = (
    "basal cell carcinoma", "blue nevus", "clark nevus", "combined nevus", "congenital nevus",
    "dermal nevus", "recurrent nevus", "reed or spitz nevus", "melanoma", "melanoma (in situ)",
    "melanoma (less than 0.76 mm)", "melanoma (0.76 to 1.5 mm)", "melanoma (more than 1.5 mm)",
    "melanoma metastasis", "dermatofibroma", "lentigo", "melanosis", "seborrheic keratosis",
    "vascular lesion", "miscellaneous",
)  # fmt: skip


def test_derm7pt_all_20_diagnosis_strings(kb):
    tax = kb[0]
    assert len(DERM7PT_DIAGNOSES) == 20
    assert unmapped_labels(tax, "derm7pt", DERM7PT_DIAGNOSES) == []
    status = {d: tax.label_status("derm7pt", d) for d in DERM7PT_DIAGNOSES}
    assert [d for d, s in status.items() if s != "mapped"] == ["miscellaneous"]
    assert "residual" in tax.out_of_scope_reason("derm7pt", "miscellaneous")
    _expect(tax, "derm7pt", {
        "clark nevus": "dysplastic nevus", "reed or spitz nevus": "spitz nevus",
        "melanoma (in situ)": "melanoma in situ", "melanosis": "melanotic macule",
        "melanoma (more than 1.5 mm)": "melanoma",
    })  # fmt: skip


DERMNET_FOLDERS = (
    "Acne and Rosacea Photos",
    "Actinic Keratosis Basal Cell Carcinoma and other Malignant Lesions",
    "Atopic Dermatitis Photos",
    "Bullous Disease Photos",
    "Cellulitis Impetigo and other Bacterial Infections",
    "Eczema Photos",
    "Exanthems and Drug Eruptions",
    "Hair Loss Photos Alopecia and other Hair Diseases",
    "Herpes HPV and other STDs Photos",
    "Light Diseases and Disorders of Pigmentation",
    "Lupus and other Connective Tissue diseases",
    "Melanoma Skin Cancer Nevi and Moles",
    "Nail Fungus and other Nail Disease",
    "Poison Ivy Photos and other Contact Dermatitis",
    "Psoriasis pictures Lichen Planus and related diseases",
    "Scabies Lyme Disease and other Infestations and Bites",
    "Seborrheic Keratoses and other Benign Tumors",
    "Systemic Disease",
    "Tinea Ringworm Candidiasis and other Fungal Infections",
    "Urticaria Hives",
    "Vascular Tumors",
    "Vasculitis Photos",
    "Warts Molluscum and other Viral Infections",
)


def _dermnet_fine(file_name: str) -> str | None:
    m = re.fullmatch(r"([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)-\d+\.jpg", file_name)
    return m.group(1).replace("-", " ") if m else None


def test_dermnet_folders_declared_and_file_names_map(kb):
    tax = kb[0]
    assert len(DERMNET_FOLDERS) == 23
    # Mixed folders never label an image: every one is declared out of scope, with a reason.
    assert {f: tax.label_status("dermnet", f) for f in DERMNET_FOLDERS} == dict.fromkeys(
        DERMNET_FOLDERS, "out_of_scope"
    )
    # File names seen in public code that lists the Kaggle DermNet images.
    files = {
        "basal-cell-carcinoma-face-22.jpg": "basal cell carcinoma",
        "basal-cell-carcinoma-lid-3.jpg": "basal cell carcinoma",
        "actinic-keratosis-horn-13.jpg": "cutaneous horn",
        "actinic-keratosis-5FU-10.jpg": "actinic keratosis",
        "actinic-cheilitis-sq-cell-lip-19.jpg": "actinic cheilitis",
        "seborrheic-keratosis-irritated-28.jpg": "irritated seborrheic keratosis",
        "seborrheic-keratoses-smooth-4.jpg": "seborrheic keratosis",
        "malignant-melanoma-177.jpg": "melanoma",
        "atypical-nevi-10.jpg": "dysplastic nevus",
        "melanocytic-nevi-86.jpg": "melanocytic nevus",
        "lentigo-adults-46.jpg": "solar lentigo",
        "hemangioma-infancy-39.jpg": "infantile hemangioma",
        "kaposi-sarcoma-41.jpg": "kaposi sarcoma",
        "pyogenic-granuloma-112.jpg": "pyogenic granuloma",
        "venous-lake-10.jpg": "venous lake",
        "angiokeratomas-1.jpg": "angiokeratoma",
    }
    assert {f: tax.map_label("dermnet", _dermnet_fine(f)) for f in files} == files
    # Diagnoses outside skin cancer and its differentials stay unmapped by design (the paper
    # kept ~20% of DermNet); the loader counts them as unknown labels.
    for f in ("acne-cystic-33.jpg", "eczema-subacute-61.jpg", "rosacea-25.jpg",
              "tinea-groin-40.jpg", "bullous-pemphigoid-43.jpg"):  # fmt: skip
        assert tax.label_status("dermnet", _dermnet_fine(f)) == "unknown"


def test_omnimedvqa_answers(kb):
    tax = kb[0]
    _expect(tax, "OmniMedVQA", {
        "Melanoma": "melanoma", "Melanocytic nevus": "melanocytic nevus",
        "Basal cell carcinoma": "basal cell carcinoma", "Actinic keratosis": "actinic keratosis",
        "Benign keratosis": "benign keratosis-like lesion", "Dermatofibroma": "dermatofibroma",
        "Vascular lesion": "vascular lesion", "Squamous cell carcinoma": "squamous cell carcinoma",
        "Monkeypox": "monkeypox", "Chickenpox": "chickenpox", "Measles": "measles",
        "Normal": "normal skin",
    })  # fmt: skip
    # ISBI2016 / ISIC2020 answer benign vs malignant: a malignancy, not a diagnosis node.
    for answer, value in [
        ("Benign image.", "benign"),
        ("Benign", "benign"),
        ("Malignant image.", "malignant"),
        ("malignant", "malignant"),
    ]:
        assert tax.map_label("OmniMedVQA", answer) is None
        assert tax.label_status("OmniMedVQA", answer) == "malignancy_only"
        assert tax.map_malignancy("OmniMedVQA", answer) == value
    assert tax.map_malignancy("OmniMedVQA", "Melanoma") == "malignant"


# --- the malignancy convention and the paper's examples ------------------------------------------
def test_malignancy_convention_resolves_the_dataset_disagreements(kb):
    tax = kb[0]
    # In situ and precursor lesions (datasets.md §4, §9 disagree): all precancerous in situ.
    for node in ("actinic keratosis", "bowen disease", "lentigo maligna", "melanoma in situ",
                 "cutaneous horn", "actinic cheilitis"):  # fmt: skip
        assert tax.malignancy(node) == PIS, node
    for node in ("melanoma", "squamous cell carcinoma", "keratoacanthoma", "basal cell carcinoma",
                 "kaposi sarcoma", "mammary paget disease"):  # fmt: skip
        assert tax.malignancy(node) == "malignant", node
    for node in ("seborrheic keratosis", "solar lentigo", "melanocytic nevus", "dermatofibroma",
                 "monkeypox", "normal skin"):  # fmt: skip
        assert tax.malignancy(node) == "benign", node
    # The DERM12345 labels it calls malignant but we call in situ.
    assert [tax.map_malignancy("derm12345", c) for c in ("lm", "bd", "ch", "ak")] == [PIS] * 4


def test_paper_hierarchy_examples(kb):
    tax = kb[0]
    assert tax.path("seborrheic keratosis") == [
        "benign keratosis-like lesion",
        "seborrheic keratosis",
    ]
    assert tax.path("bowen disease of the nail unit") == [
        "squamous cell carcinoma",
        "bowen disease",
        "bowen disease of the nail unit",
    ]
    assert tax.parent("superficial spreading melanoma") == "melanoma"
    assert "reticulated seborrheic keratosis" in tax.children("seborrheic keratosis")
    nevus_kinds = {
        "junctional nevus",
        "compound nevus",
        "dermal nevus",
        "blue nevus",
        "spitz nevus",
        "congenital nevus",
        "dysplastic nevus",
    }
    assert nevus_kinds <= set(tax.children("melanocytic nevus"))
    for a, b in [("melanocytic nevus", "melanoma"), ("seborrheic keratosis", "melanoma"),
                 ("solar lentigo", "lentigo maligna"), ("basal cell carcinoma",
                 "squamous cell carcinoma"), ("actinic keratosis", "bowen disease"),
                 ("dermatofibroma", "basal cell carcinoma"), ("amelanotic melanoma",
                 "pyogenic granuloma"), ("blue nevus", "nodular melanoma")]:  # fmt: skip
        assert b in kb[1].neighbours(a), (a, b)


# --- invariants of the packaged files ----------------------------------------------------------
def test_tree_has_one_root_and_no_cycles(kb):
    tax = kb[0]
    g = tax.to_networkx()
    assert nx.is_arborescence(g)
    assert [n for n, d in g.in_degree() if d == 0] == [tax.root]
    assert tax.root == "skin lesion" and tax.root not in tax.mapped_nodes()


def test_every_mapped_label_has_malignancy_rule_and_neighbour(kb):
    tax, ddx, rules = kb
    for node in tax.mapped_nodes():
        assert tax.malignancy(node) in MALIGNANCY
        assert node in rules, node
        assert ddx.neighbours(node) or ddx.no_neighbour.get(node), node
    assert set(ddx.no_neighbour) == {"normal skin"}


def test_every_node_has_its_own_rule_in_textbook_style(kb):
    tax, _, rules = kb
    assert set(rules.rules) == set(tax.categories())
    for node, rule in rules.rules.items():
        assert rule.text.startswith("Presence of ") and rule.text.endswith(f"indicates {node}.")
        assert rule.features.colours, f"{node} has no colour to draw"


def test_names_and_synonyms_are_unique(kb):
    tax = kb[0]
    aliases = [normalise(a) for n in tax.categories() for a in (n, *tax.synonyms(n))]
    assert len(aliases) == len(set(aliases))
    assert all(n == n.lower() for n in tax.categories())


def test_children_agree_with_parent_malignancy_or_document_it(kb):
    tax = kb[0]
    exceptions = []
    for n in tax.categories():
        p = tax.parent(n)
        if p is not None and tax.malignancy(n) != tax.malignancy(p):
            assert "malignancy" in tax.note(n).lower(), n
            exceptions.append(n)
    assert sorted(exceptions) == ["bowen disease", "kaposi sarcoma", "melanoma in situ"]


def test_ddx_edges_are_alternatives_and_look_alike_but_differ(kb):
    tax, ddx, rules = kb
    core = {n for ds in ("HAM10000", "PAD-UFES-20", "BCN20000")
            for n in tax.dataset_maps[ds].values()}  # fmt: skip
    for pair in ddx.edges:
        a, b = sorted(pair)
        assert a not in tax.path(b) and b not in tax.path(a), (a, b)
        fa, fb = rules.rules[a].features, rules.rules[b].features
        shared = (
            set(fa.colours) & set(fb.colours)
            or set(fa.structures) & set(fb.structures)
            or set(fa.surface) & set(fb.surface)
        )
        assert shared, f"{a} / {b} share no visual feature"
        distinct = set(fa.colours) != set(fb.colours) or set(fa.structures) != set(fb.structures)
        assert distinct, f"{a} / {b} differ in neither colours nor structures"
        if a in core or b in core:  # the demo classes must stay distinguishable
            assert distinct
        assert ddx.discriminator(a, b).count("\n") == 0


def test_statistics_agree_with_the_structures(kb):
    tax, ddx, _ = kb
    s = statistics(tax, ddx)
    assert s["nodes"] == len(tax.categories()) == sum(s["depth_histogram"].values())
    assert s["leaves"] == sum(not tax.children(n) for n in tax.categories())
    assert s["max_depth"] == max(s["depth_histogram"]) == max(map(tax.depth, tax.categories()))
    assert s["top_level"] == s["depth_histogram"][1]
    assert sum(s["malignancy"].values()) == s["nodes"]
    assert s["ddx"]["edges"] == len(ddx.edges)
    assert sum(s["ddx"]["degree_histogram"].values()) == s["ddx"]["nodes"] == len(ddx.nodes)
    assert sum(k * v for k, v in s["ddx"]["degree_histogram"].items()) == 2 * len(ddx.edges)
    assert s["ddx"]["mapped_without_neighbour"] == ["normal skin"]
    assert s["datasets"]["derm12345"]["labels"] == 40
    assert s["datasets"]["OmniMedVQA"]["malignancy_only"] == len(tax.malignancy_only["OmniMedVQA"])


def test_load_time_is_small():
    best = float("inf")
    for _ in range(3):
        taxonomy_module._YAML_CACHE.clear()  # time the parse, not the cache
        t0 = time.perf_counter()
        tax = load_taxonomy()
        load_ddx(tax)
        load_rules(tax)  # strict: also re-checks the DDx features
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0  # ~0.2 s on a dev machine; the budget is 0.5 s, with headroom for CI


# --- broken files fail loudly, naming the file and the entry --------------------------------------
GOOD = {
    "taxonomy": {
        "root": "skin lesion",
        "nodes": [
            {"name": "melanocytic nevus", "malignancy": "benign", "synonyms": ["nevus"]},
            {"name": "blue nevus", "parent": "melanocytic nevus", "malignancy": "benign"},
            {"name": "melanoma", "malignancy": "malignant"},
            {"name": "melanoma in situ", "parent": "melanoma", "malignancy": PIS,
             "note": "Malignancy exception: confined to the epidermis."},
        ],
    },
    "datasets": {
        "DEMO": {
            "labels": {"nev": "melanocytic nevus", "bn": "blue nevus", "mel": "melanoma",
                       "mis": "melanoma in situ"},
            "out_of_scope": {"misc": "a residual bin"},
        }
    },
    "ddx": {
        "edges": [
            {"a": "melanocytic nevus", "b": "melanoma", "features": "regular vs atypical"},
            {"a": "blue nevus", "b": "melanoma in situ", "features": "blue vs brown-black"},
        ]
    },
    "rules": {
        "melanocytic nevus": {"rule": "Presence of a brown network indicates melanocytic nevus.",
                              "features": {"colours": ["light brown"],
                                           "structures": ["typical pigment network"]}},
        "blue nevus": {"rule": "Presence of a blue papule indicates blue nevus.",
                       "features": {"colours": ["blue"], "structures": ["homogeneous pattern"]}},
        "melanoma": {"rule": "Presence of a blue-white veil indicates melanoma.",
                     "features": {"symmetry": "asymmetric", "colours": ["black"],
                                  "structures": ["blue-white veil"]}},
        "melanoma in situ": {"rule": "Presence of a flat atypical network indicates melanoma "
                                     "in situ.",
                             "features": {"colours": ["dark brown"],
                                          "structures": ["atypical pigment network"]}},
    },
}  # fmt: skip


def write_kb(tmp_path, **changes):
    """Write GOOD (with whole-file replacements) as tax/ds/ddx/rules/features yaml files."""
    bodies = copy.deepcopy(GOOD)
    bodies.update(changes)
    names = {"taxonomy": "tax.yaml", "datasets": "ds.yaml", "ddx": "graph.yaml",
             "rules": "book.yaml"}  # fmt: skip
    paths = {}
    for key, name in names.items():
        paths[key] = tmp_path / name
        paths[key].write_text(yaml.safe_dump(bodies[key], sort_keys=False), encoding="utf-8")
    paths["features"] = tmp_path / "vocab.yaml"
    paths["features"].write_text((KNOWLEDGE_DIR / "features.yaml").read_text(), encoding="utf-8")
    return paths


def load_all(p, strict=True):
    tax = load_taxonomy(p["taxonomy"], p["datasets"], strict=strict)
    ddx = load_ddx(tax, p["ddx"], strict=strict)
    rules = load_rules(tax, p["rules"], p["features"], strict=strict)
    return tax, ddx, rules


def _nodes(*extra, drop=()):
    nodes = [n for n in copy.deepcopy(GOOD["taxonomy"]["nodes"]) if n["name"] not in drop]
    return {"root": "skin lesion", "nodes": nodes + list(extra)}


def _raises(p, *needles, strict=True):
    with pytest.raises(KnowledgeError) as err:
        load_all(p, strict=strict)
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    return str(err.value)


def test_the_good_fixture_loads_strictly(tmp_path):
    tax, ddx, rules = load_all(write_kb(tmp_path))
    assert tax.path("melanoma in situ") == ["melanoma", "melanoma in situ"]
    assert ddx.neighbours("melanoma") == ["melanocytic nevus"] and len(rules.rules) == 4
    assert tax.label_status("DEMO", "MISC") == "out_of_scope"


@pytest.mark.parametrize(
    "nodes, needles",
    [
        pytest.param(
            _nodes(
                {"name": "a", "parent": "b", "malignancy": "benign"},
                {"name": "b", "parent": "a", "malignancy": "benign"},
            ),
            ["tax.yaml", "cycle", "'a'"],
            id="cycle",
        ),
        pytest.param(
            _nodes({"name": "spitz nevus", "parent": "nevi", "malignancy": "benign"}),
            ["tax.yaml", "'spitz nevus'", "unknown parent 'nevi'"],
            id="orphan-parent",
        ),
        pytest.param(
            _nodes({"name": "lentigo", "parent": None, "malignancy": "benign"}),
            ["tax.yaml", "'lentigo'", "second root"],
            id="second-root",
        ),
        pytest.param(
            _nodes({"name": "melanoma", "malignancy": "malignant"}),
            ["tax.yaml", "'melanoma'", "duplicate"],
            id="duplicate-node",
        ),
        pytest.param(
            _nodes({"name": "lentigo", "malignancy": "harmless"}),
            ["tax.yaml", "'lentigo'", "malignancy must be one of"],
            id="bad-malignancy",
        ),
        pytest.param(
            _nodes({"name": "lentigo", "malignancy": "benign", "synonyms": ["Nevus"]}),
            ["tax.yaml", "'Nevus'", "'lentigo'", "'melanocytic nevus'"],
            id="duplicate-synonym",
        ),
        pytest.param(
            _nodes({"name": "Lentigo", "malignancy": "benign"}),
            ["tax.yaml", "'Lentigo'", "lower case"],
            id="upper-case-name",
        ),
    ],
)
def test_broken_taxonomy(tmp_path, nodes, needles):
    _raises(write_kb(tmp_path, taxonomy=nodes), *needles)


def test_malignancy_mismatch_needs_a_note_in_strict_mode(tmp_path):
    bare = _nodes(
        {"name": "melanoma in situ", "parent": "melanoma", "malignancy": PIS},
        drop=("melanoma in situ",),
    )
    p = write_kb(tmp_path, taxonomy=bare)
    _raises(p, "tax.yaml", "'melanoma in situ'", "'melanoma'", "note")
    # Hand-made test taxonomies may skip the policy; the structure is still checked.
    assert (
        load_taxonomy(p["taxonomy"], p["datasets"], strict=False).malignancy("melanoma in situ")
        == PIS
    )


def test_packaged_exception_without_its_note_fails(tmp_path):
    raw = yaml.safe_load((KNOWLEDGE_DIR / "taxonomy.yaml").read_text(encoding="utf-8"))
    for node in raw["nodes"]:
        if node["name"] == "bowen disease":
            del node["note"]
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(
        KnowledgeError,
        match=r"taxonomy\.yaml: node 'bowen disease' is "
        r"'precancerous in situ' but its parent "
        r"'squamous cell carcinoma' is 'malignant'",
    ):
        load_taxonomy(path, KNOWLEDGE_DIR / "datasets.yaml", strict=True)


@pytest.mark.parametrize(
    "datasets, needles",
    [
        pytest.param(
            {"DEMO": {"labels": {"nev": "nevus of ota"}}},
            ["ds.yaml", "DEMO", "'nev'", "'nevus of ota'"],
            id="unknown-node",
        ),
        pytest.param(
            {"DEMO": {"labels": {"NEV": "melanocytic nevus"}, "out_of_scope": {"nev": "excluded"}}},
            ["ds.yaml", "DEMO", "'nev'", "'NEV'"],
            id="mapped-and-out-of-scope",
        ),
        pytest.param(
            {"DEMO": {"labels": {"nev": "melanocytic nevus"}, "out_of_scope": {"misc": ""}}},
            ["ds.yaml", "DEMO", "'misc'", "reason"],
            id="no-reason",
        ),
        pytest.param(
            {"DEMO": {"labels": {}, "malignancy_only": {"benign image": "harmless"}}},
            ["ds.yaml", "DEMO", "'benign image'"],
            id="bad-malignancy-only",
        ),
        pytest.param(
            {
                "DEMO": {
                    "labels": {"nev": "melanocytic nevus", "mel": "melanoma"},
                    "hierarchy": {
                        "levels": {
                            "super": {"benign": {"malignancy": "benign", "codes": ["nev", "mel"]}}
                        }
                    },
                }
            },
            ["ds.yaml", "DEMO", "'mel'", "'benign'", "malignancy_exceptions"],
            id="hierarchy-malignancy",
        ),
        pytest.param(
            {"DEMO": {"labels": {"nev": "melanocytic nevus"}, "typo": {}}},
            ["ds.yaml", "'DEMO'", "typo"],
            id="unknown-section",
        ),
    ],
)
def test_broken_datasets(tmp_path, datasets, needles):
    _raises(write_kb(tmp_path, datasets=datasets), *needles)


@pytest.mark.parametrize(
    "edges, needles",
    [
        pytest.param(
            [{"a": "melanoma", "b": "wart", "features": "x"}],
            ["graph.yaml", "'wart'", "orphan"],
            id="orphan-node",
        ),
        pytest.param(
            [{"a": "melanoma", "b": "melanoma", "features": "x"}],
            ["graph.yaml", "self-loop", "'melanoma'"],
            id="self-loop",
        ),
        pytest.param(
            GOOD["ddx"]["edges"]
            + [{"a": "melanoma", "b": "melanocytic nevus", "features": "again"}],
            ["graph.yaml", "duplicate", "'melanoma'"],
            id="duplicate-reversed",
        ),
        pytest.param(
            GOOD["ddx"]["edges"] + [{"a": "melanoma", "b": "melanoma in situ", "features": "x"}],
            ["graph.yaml", "'melanoma in situ'", "ancestor"],
            id="edge-along-path",
        ),
        pytest.param(
            GOOD["ddx"]["edges"] + [{"a": "melanoma", "b": "blue nevus", "features": " "}],
            ["graph.yaml", "'blue nevus'", "empty 'features'"],
            id="no-features",
        ),
    ],
)
def test_broken_ddx(tmp_path, edges, needles):
    _raises(write_kb(tmp_path, ddx={"edges": edges}), *needles)


def test_mapped_node_without_neighbour_needs_a_reason(tmp_path):
    one_edge = {"edges": GOOD["ddx"]["edges"][:1]}
    p = write_kb(tmp_path, ddx=one_edge)
    _raises(p, "graph.yaml", "'blue nevus'", "DEMO", "no_neighbour")
    assert load_all(p, strict=False)[1].neighbours("blue nevus") == []
    documented = {**one_edge, "no_neighbour": {"blue nevus": "x", "melanoma in situ": "y"}}
    assert load_all(write_kb(tmp_path, ddx=documented))[1].no_neighbour["blue nevus"] == "x"
    no_reason = {**one_edge, "no_neighbour": {"blue nevus": "", "melanoma in situ": "y"}}
    _raises(write_kb(tmp_path, ddx=no_reason), "graph.yaml", "'blue nevus'", "reason")


def _rules(**changes):
    rules = copy.deepcopy(GOOD["rules"])
    rules.update(changes)
    return {k: v for k, v in rules.items() if v is not None}


@pytest.mark.parametrize(
    "rules, needles",
    [
        pytest.param(
            _rules(**{"blue nevus": None}),
            ["book.yaml", "no rule", "'blue nevus'"],
            id="missing-rule",
        ),
        pytest.param(
            _rules(
                **{
                    "blue nevus": {
                        "rule": "A blue papule means blue nevus.",
                        "features": {"colours": ["blue"]},
                    }
                }
            ),
            ["book.yaml", "'blue nevus'", "Presence of"],
            id="not-textbook-style",
        ),
        pytest.param(
            _rules(
                **{
                    "blue nevus": {
                        "rule": "Presence of x indicates blue nevus.",
                        "features": {"colours": ["cobalt"]},
                    }
                }
            ),
            ["book.yaml", "'blue nevus'", "'cobalt'", "features.yaml"],
            id="value-outside-vocabulary",
        ),
        pytest.param(
            _rules(
                **{
                    "blue nevus": {
                        "rule": "Presence of x indicates blue nevus.",
                        "features": {"border": ["regular"]},
                    }
                }
            ),
            ["book.yaml", "'blue nevus'", "border takes one value"],
            id="list-for-single",
        ),
        pytest.param(
            _rules(
                **{
                    "wart": {
                        "rule": "Presence of x indicates wart.",
                        "features": {"colours": ["pink"]},
                    }
                }
            ),
            ["book.yaml", "'wart'", "not a node"],
            id="rule-for-unknown-node",
        ),
    ],
)
def test_broken_rules(tmp_path, rules, needles):
    _raises(write_kb(tmp_path, rules=rules), *needles)


def test_identical_features_on_a_ddx_edge_are_rejected(tmp_path):
    twin = copy.deepcopy(GOOD["rules"]["melanoma"]["features"])
    rules = _rules(
        **{
            "melanocytic nevus": {
                "rule": "Presence of y indicates melanocytic nevus.",
                "features": twin,
            }
        }
    )
    tax, ddx, book = load_all(write_kb(tmp_path, rules=rules))
    with pytest.raises(
        KnowledgeError,
        match=r"book\.yaml: rules 'melanocytic nevus' and "
        r"'melanoma' are DDx neighbours \(graph\.yaml\)",
    ):
        check_ddx_features(book, ddx, "book.yaml")
