import pytest

from ftaudit.tasks.calibration import expected_calibration_error, reliability_bins


def test_reliability_bins_count_mean_confidence_and_accuracy_per_bin():
    bins = reliability_bins([0.95, 0.92, 0.55, 0.3], [True, False, True, False], bins=10)
    assert bins["bins"] == 10 and sum(bins["count"]) == 4
    assert bins["count"][9] == 2 and bins["confidence"][9] == pytest.approx(0.935) and bins["accuracy"][9] == 0.5
    assert bins["count"][5] == 1 and bins["accuracy"][5] == 1.0
    assert bins["count"][2] == 1 and bins["accuracy"][2] == 0.0  # (0.2, 0.3]: the upper edge belongs to the bin
    assert bins["confidence"][0] is None and bins["accuracy"][0] is None  # empty bins have no mean
    expected = (2 * abs(0.5 - 0.935) + abs(1 - 0.55) + abs(0 - 0.3)) / 4
    assert (
        bins["ece"] == pytest.approx(expected) == expected_calibration_error([0.95, 0.92, 0.55, 0.3], [1, 0, 1, 0], 10)
    )


def test_a_perfectly_calibrated_bin_has_no_gap_and_no_predictions_no_error():
    assert reliability_bins([0.8] * 5, [1, 1, 1, 1, 0])["ece"] == pytest.approx(0.0)
    empty = reliability_bins([], [])
    assert empty["ece"] == 0.0 and sum(empty["count"]) == 0 and empty["accuracy"] == [None] * 15
