"""The verdict's words: a lift, a loss and "no evidence" are each said plainly; caveats from the results."""

from __future__ import annotations

from medgan.benchmark.report import caveats, verdict

NAMES = ["malignant", "normal, benign"]
HEADLINE = ["recall/malignant", "balanced_accuracy"]


def _c(diff: float, lo: float, hi: float) -> dict[str, float]:
    return {"diff": diff, "ci_low": lo, "ci_high": hi}


def _comparison(arm: str, base: str, recall: dict, bal: dict) -> dict:
    return {"arm": arm, "baseline": base, "phrase": f"{arm} over {base}",
            "metrics": {"recall/malignant": recall, "balanced_accuracy": bal}}


def test_a_lift_is_said_with_its_interval() -> None:
    said = verdict([_comparison("real+synthetic", "real", _c(0.061, 0.012, 0.108), _c(0.023, 0.004, 0.05))],
                   HEADLINE, NAMES, 0.95)
    assert said["answer"].startswith("Yes.")
    assert "raised malignant recall by 6.1 points (95% CI 1.2 to 10.8)" in said["answer"]
    assert "raised balanced accuracy by 2.3 points (95% CI 0.4 to 5.0)" in said["answer"]


def test_an_interval_covering_zero_is_no_evidence_of_a_lift() -> None:
    comps = [
        _comparison("real+synthetic", "real", _c(0.023, -0.015, 0.06), _c(-0.004, -0.03, 0.02)),
        _comparison("real+classical+synthetic", "real+classical", _c(0.061, 0.012, 0.108), _c(0.01, -0.01, 0.03)),
    ]
    said = verdict(comps, HEADLINE, NAMES, 0.95)
    assert said["answer"].startswith("No evidence of a lift.")
    assert ("changed malignant recall by +2.3 points (95% CI -1.5 to 6.0): the interval covers 0, so there is no "
            "evidence of a lift") in said["answer"]
    assert len(said["lines"]) == 2 and "raised malignant recall by 6.1" in said["lines"][1]


def test_a_loss_says_it_hurt_and_a_trade_off_is_mixed() -> None:
    hurt = verdict([_comparison("real+synthetic", "real", _c(-0.08, -0.12, -0.03), _c(-0.01, -0.04, 0.02))],
                   HEADLINE, NAMES, 0.95)
    assert hurt["answer"].startswith("No: it hurt (malignant recall went down).")
    assert "lowered malignant recall by 8.0 points (95% CI -12.0 to -3.0): it hurt" in hurt["answer"]
    mixed = verdict([_comparison("real+synthetic", "real", _c(0.08, 0.03, 0.12), _c(-0.03, -0.05, -0.01))],
                    HEADLINE, NAMES, 0.95)
    assert mixed["answer"].startswith("Mixed: it raised malignant recall but lowered balanced accuracy.")
    partly = verdict([_comparison("real+synthetic", "real", _c(0.08, 0.03, 0.12), _c(0.01, -0.02, 0.04))],
                     HEADLINE, NAMES, 0.95)
    assert partly["answer"].startswith("Partly: it raised malignant recall; there is no evidence of a lift in "
                                       "balanced accuracy.")


def test_caveats_come_from_the_results() -> None:
    tstr = {"synthetic-only": {"balanced_accuracy": {"mean": 0.48, "ci_low": 0.40, "ci_high": 0.58}}}
    said = caveats(tstr, {"coverage": 0.01}, num_classes=2, seeds=2, quick=True)
    assert len(said) == 3 and said[0].startswith("This is a quick run")
    assert "no better than chance" in said[1] and "cover only 1%" in said[2]
    good = {"synthetic-only": {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.62, "ci_high": 0.78}}}
    assert caveats(good, {"coverage": 0.8}, num_classes=2, seeds=5, quick=False) == []


def test_a_ci_bound_near_zero_keeps_its_sign_and_never_prints_minus_zero():
    from medgan.benchmark.report import _ci

    assert _ci(0.0002, 0.061) == "0.02 to 6.1"  # significant: the lower bound shows it is above 0
    assert _ci(-0.0003, 0.031) == "-0.03 to 3.1"
    assert _ci(0.0, 0.05) == "0.0 to 5.0"
    assert _ci(-0.12345, -0.0104) == "-12.3 to -1.0"
    assert _ci(float("nan"), 0.1) == "n/a"


def test_a_leaky_test_split_gets_the_caution() -> None:
    good = {"synthetic-only": {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.62, "ci_high": 0.78}}}
    said = caveats(good, {"coverage": 0.8}, num_classes=2, seeds=5, quick=False, test_twins=0.359)
    assert len(said) == 1 and said[0].startswith("36% of the real test images have a near-duplicate")
    assert "synthetic-only arm starts behind" in said[0]
    assert caveats(good, {"coverage": 0.8}, num_classes=2, seeds=5, quick=False, test_twins=0.02) == []


def test_a_weak_gan_by_c2st_gets_the_caution() -> None:
    good = {"synthetic-only": {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.62, "ci_high": 0.78}}}
    said = caveats(good, {"c2st/auc": 0.93, "coverage": 0.8}, num_classes=2, seeds=5, quick=False)
    assert len(said) == 1 and "ROC AUC 0.93" in said[0] and "test this weak GAN" in said[0]
    assert caveats(good, {"c2st/auc": 0.8, "coverage": 0.8}, num_classes=2, seeds=5, quick=False) == []


def test_speckled_masks_get_the_caution() -> None:
    good = {"synthetic-only": {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.62, "ci_high": 0.78}}}
    speckled = {"values/components_synthetic": 8.8, "values/components_real": 1.04}
    said = caveats(good, speckled, num_classes=2, seeds=5, quick=False)
    assert len(said) == 1 and "8.8 connected pieces" in said[0] and "1.0" in said[0]
    clean = {"values/components_synthetic": 1.5, "values/components_real": 1.04}
    assert caveats(good, clean, num_classes=2, seeds=5, quick=False) == []


def test_masks_whose_class_sizes_are_drawn_backwards_get_the_caution() -> None:
    good = {"synthetic-only": {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.62, "ci_high": 0.78}}}
    names = ["normal", "hyperplasia"]
    sizes = {"values/size_auc_real/class_normal": 0.316, "values/size_auc_real/class_hyperplasia": 0.684,
             "values/foreground_real/class_hyperplasia": 0.019}
    backwards = {**sizes, "values/size_auc_synthetic/class_normal": 0.59,
                 "values/size_auc_synthetic/class_hyperplasia": 0.41,
                 "values/foreground_synthetic/class_hyperplasia": 0.015}
    said = caveats(good, backwards, num_classes=2, seeds=5, quick=False, class_names=names)
    assert len(said) == 1 and "hyperplasia masks are the larger ones" in said[0]
    assert "ROC AUC 0.68" in said[0] and "(0.41;" in said[0] and "1.5% of the image against 1.9%" in said[0]
    right = {**sizes, "values/size_auc_synthetic/class_normal": 0.37,
             "values/size_auc_synthetic/class_hyperplasia": 0.63}
    assert caveats(good, right, num_classes=2, seeds=5, quick=False, class_names=names) == []
    # Without class names, or where size carries little class in real data, nothing is checked.
    assert caveats(good, backwards, num_classes=2, seeds=5, quick=False) == []
    weak = {**backwards, "values/size_auc_real/class_hyperplasia": 0.55}
    assert caveats(good, weak, num_classes=2, seeds=5, quick=False, class_names=names) == []


def test_a_gan_that_may_copy_gets_the_caution() -> None:
    good = {"synthetic-only": {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.62, "ci_high": 0.78}}}
    copier = {"memorisation/n_likely_copies": 30.0, "memorisation/p_value": 2e-6, "n_synthetic": 400.0}
    said = caveats(good, copier, num_classes=2, seeds=5, quick=False)
    assert len(said) == 1 and said[0].startswith("30 of 400 synthetic images") and "memorisation_pairs.png" in said[0]
    chance = {"memorisation/n_likely_copies": 6.0, "memorisation/p_value": 0.3, "n_synthetic": 400.0}
    assert caveats(good, chance, num_classes=2, seeds=5, quick=False) == []


def _primary(recall: dict, bal: dict, **more: dict) -> dict:
    comp = _comparison("synthetic-pretrain", "real+classical", recall, bal)
    comp["metrics"].update(more)
    return comp


def test_a_primary_gain_paid_for_elsewhere_is_a_trade_not_a_lift() -> None:
    # The PneumoniaMNIST sweep at 5 %: target recall up, the other class's recall and the AUROC down.
    comp = _primary(_c(0.020, 0.003, 0.037), _c(-0.037, -0.065, -0.011),
                    **{"recall/normal_benign": _c(-0.094, -0.155, -0.038), "auroc_macro": _c(-0.015, -0.028, -0.003)})
    said = verdict([comp], HEADLINE, NAMES, 0.95, primary=comp, primary_metric="recall/malignant")
    assert said["kind"] == "trade" and said["answer"].startswith("A trade, not a lift.")
    assert "raised malignant recall by 2.0 points (95% CI 0.3 to 3.7)" in said["answer"]
    assert ("It paid for the gain: it lowered macro AUROC by 1.5 points (95% CI -2.8 to -0.3); it lowered "
            "normal, benign recall by 9.4 points (95% CI -15.5 to -3.8).") in said["answer"]
    assert ("synthetic-pretrain calls malignant more often: a different operating point rather than a better "
            "classifier, and a lower decision threshold for malignant in real+classical can buy a similar trade") in said["answer"]
    assert "(its macro AUROC is not higher)" not in said["answer"]  # said above: it is lower
    # The other class's recall alone is enough (balanced accuracy and AUROC within their intervals).
    only = _primary(_c(0.022, 0.010, 0.036), _c(-0.023, -0.048, 0.004),
                    **{"recall/normal_benign": _c(-0.067, -0.122, -0.010), "auroc_macro": _c(-0.01, -0.03, 0.01)})
    said = verdict([only], HEADLINE, NAMES, 0.95, primary=only, primary_metric="recall/malignant")
    assert said["kind"] == "trade" and "better classifier (its macro AUROC is not higher)" in said["answer"]


def test_a_primary_gain_with_nothing_lost_is_a_lift() -> None:
    comp = _primary(_c(0.061, 0.012, 0.108), _c(0.01, -0.01, 0.03),
                    **{"recall/normal_benign": _c(-0.02, -0.06, 0.02), "auroc_macro": _c(0.01, -0.01, 0.03)})
    said = verdict([comp], HEADLINE, NAMES, 0.95, primary=comp, primary_metric="recall/malignant")
    assert said["kind"] == "lift" and said["answer"].startswith("Yes.") and "paid" not in said["answer"]
    hurt = _primary(_c(-0.03, -0.05, -0.01), _c(0.0, -0.02, 0.02))
    assert verdict([hurt], HEADLINE, NAMES, 0.95, primary=hurt)["kind"] == "hurt"
    none = _primary(_c(0.01, -0.02, 0.04), _c(0.0, -0.02, 0.02))
    said = verdict([none], HEADLINE, NAMES, 0.95, primary=none)
    assert said["kind"] == "none" and said["answer"].startswith("No evidence of a lift.")
