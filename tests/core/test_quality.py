"""Label quality and reviewed-sample precision against hand computations."""

import math
from collections import Counter

import numpy as np
import pytest

from fixer_core.quality import (
    PixelConfusion,
    StratumReview,
    estimate_precision,
    flag_shares,
    label_quality,
    stratified_sample,
    wilson_interval,
)

Z = 1.959963984540054


# -- label quality -----------------------------------------------------------


def test_confusion_streams_images_and_skips_void():
    acc = PixelConfusion(3)
    original = np.array([[0, 0, 1], [2, 2, 255]])
    corrected = np.array([[0, 1, 1], [2, 1, 255]])
    acc.update(original, corrected)
    acc.update(original, corrected)
    # rows corrected, columns original
    expected = 2 * np.array([[1, 0, 0], [1, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(acc.matrix, expected)


def test_confusion_rejects_mismatched_masks():
    with pytest.raises(ValueError, match="masks of one shape"):
        PixelConfusion(2).update(np.zeros((2, 2)), np.zeros((2, 3)))


def test_label_quality_matches_hand_computation():
    # Original: 6 x a, 2 x b, 0 x c, 0 x d; the correction turns 2 a into
    # c and 1 b into a; d is absent from both.
    original = np.array([[0, 0, 0, 0, 0, 0, 1, 1]])
    corrected = np.array([[0, 0, 0, 0, 2, 2, 1, 0]])
    acc = PixelConfusion(4)
    acc.update(original, corrected)
    q = label_quality(acc.matrix, ["a", "b", "c", "d"])
    # a: tp 4, before 6, after 5 -> 4 / 7; b: tp 1, before 2, after 1 ->
    # 1 / 2; c: tp 0, before 0, after 2 -> 0; d absent
    assert q.iou == [4 / 7, 0.5, 0.0, None]
    assert q.miou == pytest.approx((4 / 7 + 0.5 + 0.0) / 3)
    assert q.absent == ["d"]
    assert q.pixels_before == [6, 2, 0, 0]
    assert q.pixels_after == [5, 1, 2, 0]
    assert q.ratios == [5 / 6, 0.5, None, None]
    assert q.changed_pixels == 3 and q.total_pixels == 8
    d = q.to_dict()
    assert d["changed_share"] == 3 / 8
    assert d["classes"][0] == {
        "class": "a",
        "iou": 4 / 7,
        "pixels_before": 6,
        "pixels_after": 5,
        "share_before": 6 / 8,
        "ratio": 5 / 6,
    }


def test_rare_classes_growth():
    # 1000 pixels: a holds 985, b 10, c 5 before; the correction moves 20
    # pixels of a to b and 5 to c
    confusion = np.array([[960, 0, 0], [20, 10, 0], [5, 0, 5]])
    q = label_quality(confusion, ["a", "b", "c"])
    rare = q.rare_growth(0.02)
    assert rare["classes"] == ["b", "c"]
    assert rare["share_before"] == 0.015 and rare["share_after"] == 0.04
    assert rare["ratio"] == pytest.approx(40 / 15)
    assert q.to_dict()["rare_growth"]["max_share"] == 0.01


def test_label_quality_of_unchanged_labels_is_perfect():
    q = label_quality(np.diag([5, 0, 3]), ["a", "b", "c"])
    assert q.miou == 1.0 and q.absent == ["b"] and q.changed_pixels == 0


def test_label_quality_checks_the_shape():
    with pytest.raises(ValueError, match=r"shape of \(2, 2\)"):
        label_quality(np.zeros((3, 3)), ["a", "b"])


def test_flag_shares_match_hand_computation():
    summary = {
        "issues": [
            {"name": "small", "num_patches": 2, "num_pixels": 10},
            {"name": "big", "num_patches": 3, "num_pixels": 60},
        ],
        "totals": {
            "general": {"patches": 5, "pixels": 50},
            "ambiguous": {"patches": 3, "pixels": 40},
            "false_negative": {"patches": 2, "pixels": 10},
        },
        "num_pixels": 1000,
    }
    s = flag_shares(summary)
    assert [i["name"] for i in s["issues"]] == ["big", "small"]
    assert s["issues"][0]["pixel_share"] == 0.6
    assert s["num_patches"] == 10 and s["flagged_pixels"] == 100
    assert s["flagged_share"] == 0.1
    assert s["issue_patch_share"] == 0.5
    assert s["issue_pixel_share"] == 0.7
    assert s["other_patch_share"] == 0.5
    assert s["other_pixel_share"] == pytest.approx(0.3)
    assert s["by_type"]["ambiguous"] == {
        "patches": 3,
        "pixels": 40,
        "patch_share": 0.3,
        "pixel_share": 0.4,
    }


# -- sampling ----------------------------------------------------------------


def test_sample_is_capped_per_stratum_and_takes_small_strata_whole():
    strata = ["a"] * 40 + ["b"] * 3 + ["c"] * 25
    picked = stratified_sample(strata, 25, seed=0)
    counts = Counter(strata[i] for i in picked)
    assert counts == {"a": 25, "b": 3, "c": 25}
    assert picked == sorted(set(picked))


def test_sample_is_seeded():
    strata = ["a", "b"] * 50
    first = stratified_sample(strata, 10, seed=3)
    assert stratified_sample(strata, 10, seed=3) == first
    assert stratified_sample(strata, 10, seed=4) != first


def test_a_stratum_sample_does_not_depend_on_the_others():
    alone = stratified_sample(["a"] * 30, 5, seed=1)
    mixed = stratified_sample(["a"] * 30 + ["b"] * 30, 5, seed=1)
    assert [i for i in mixed if i < 30] == alone


def test_sample_rejects_a_bad_cap():
    with pytest.raises(ValueError, match="per_stratum must be positive"):
        stratified_sample(["a"], 0, seed=0)


# -- intervals and the estimate ----------------------------------------------


def _wilson(x, n):
    """Textbook Wilson interval."""
    p = x / n
    c = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    h = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return c - h, c + h


@pytest.mark.parametrize(
    ("x", "n", "expected"),
    [
        (20, 25, (0.6087, 0.9114)),
        (25, 25, (25 / (25 + Z * Z), 1.0)),
        (0, 25, (0.0, Z * Z / (25 + Z * Z))),
        (1, 1, (1 / (1 + Z * Z), 1.0)),
        (0, 1, (0.0, Z * Z / (1 + Z * Z))),
    ],
    ids=["20-of-25", "all", "none", "one-confirmed", "one-rejected"],
)
def test_wilson_interval(x, n, expected):
    low, high = wilson_interval(x, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_interval_needs_reviews():
    with pytest.raises(ValueError, match="n must be positive"):
        wilson_interval(0, 0)


def test_one_class_estimate_is_wilson_at_the_corrected_size():
    est = estimate_precision([StratumReview("a", 100, 1000, 25, 20, 5)])
    row = est["classes"][0]
    assert row["precision"] == 0.8 and row["missing"] == 0
    assert (row["low"], row["high"]) == pytest.approx(_wilson(20, 25))
    # variance 0.8 * 0.2 / 25 * (75 / 99) -> effective size 25 * 99 / 75
    n_eff = 25 * 99 / 75
    p, low, high = est["overall"]["precision_patches"]
    assert p == pytest.approx(0.8)
    assert (low, high) == pytest.approx(_wilson(0.8 * n_eff, n_eff))
    assert est["overall"]["expected_true_patches"] == pytest.approx(
        [80, 100 * low, 100 * high]
    )
    assert est["overall"]["expected_true_pixels"][0] == pytest.approx(800)


def test_two_class_estimate_weights_by_flagged_totals():
    est = estimate_precision(
        [
            StratumReview("a", 90, 900, 10, 9, 1),
            StratumReview("b", 10, 2000, 10, 5, 5),  # reviewed whole
        ]
    )
    overall = est["overall"]
    p, low, high = overall["precision_patches"]
    assert p == pytest.approx(0.9 * 0.9 + 0.1 * 0.5)
    var = 0.81 * 0.9 * 0.1 / 10 * (80 / 89)  # b adds nothing: fpc 0
    n_eff = p * (1 - p) / var
    assert (low, high) == pytest.approx(_wilson(p * n_eff, n_eff))
    pix = overall["precision_pixels"][0]
    assert pix == pytest.approx((900 * 0.9 + 2000 * 0.5) / 2900)
    assert overall["expected_true_patches"][0] == pytest.approx(86)
    assert overall["expected_true_pixels"][0] == pytest.approx(1810)
    assert overall["reviewed"] == 20 and overall["missing"] == 0


def test_estimate_edges_all_confirmed_and_none_confirmed():
    est = estimate_precision([StratumReview("a", 100, 500, 25, 25, 0)])
    assert est["overall"]["precision_patches"] == pytest.approx(
        [1.0, 25 / (25 + Z * Z), 1.0]
    )
    est = estimate_precision([StratumReview("a", 100, 500, 25, 0, 25)])
    assert est["overall"]["precision_patches"] == pytest.approx(
        [0.0, 0.0, Z * Z / (25 + Z * Z)]
    )
    assert est["overall"]["expected_true_patches"][0] == 0


def test_estimate_with_one_review_is_wide():
    est = estimate_precision([StratumReview("a", 50, 500, 25, 1, 0)])
    assert est["classes"][0]["missing"] == 24
    p, low, high = est["overall"]["precision_patches"]
    assert (p, high) == (1.0, 1.0)
    assert low == pytest.approx(1 / (1 + Z * Z))
    assert est["overall"]["missing"] == 24


def test_estimate_of_classes_reviewed_whole_is_exact():
    est = estimate_precision(
        [StratumReview("a", 4, 40, 4, 3, 1), StratumReview("b", 1, 5, 1, 1, 0)]
    )
    assert est["overall"]["precision_patches"] == pytest.approx([0.8] * 3)


def test_zero_reviews_give_no_estimate_but_a_missing_count():
    est = estimate_precision(
        [
            StratumReview("a", 100, 500, 25, 0, 0),
            StratumReview("b", 10, 50, 10, 0, 0),
        ]
    )
    overall = est["overall"]
    assert overall["precision_patches"] is None
    assert overall["expected_true_pixels"] is None
    assert overall["missing"] == 35 and overall["sampled"] == 35
    assert overall["unreviewed"] == ["a", "b"]
    assert est["classes"][0]["precision"] is None


def test_unreviewed_class_is_left_out_of_the_weights():
    est = estimate_precision(
        [
            StratumReview("a", 100, 500, 25, 20, 5),
            StratumReview("b", 100, 500, 25, 0, 0),
        ]
    )
    overall = est["overall"]
    assert overall["precision_patches"][0] == pytest.approx(0.8)
    assert overall["expected_true_patches"][0] == pytest.approx(160)
    assert overall["unreviewed"] == ["b"] and overall["missing"] == 25


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, 100, 5, 4, 2), "exceed the 5 sampled"),
        ((3, 100, 5, 1, 1), "exceed the 3 flagged"),
        ((10, 100, 5, -1, 1), "negative"),
    ],
    ids=["reviews>sampled", "sampled>flagged", "negative"],
)
def test_stratum_checks_its_counts(args, match):
    with pytest.raises(ValueError, match=match):
        StratumReview("a", *args)
