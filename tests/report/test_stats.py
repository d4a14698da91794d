"""The statistics behind every verdict and every compare: the U test, the
Hodges-Lehmann interval (checked against values computed by hand), how many
repetitions a test needs, and Holm's correction."""

import math
import unittest

import fixtures  # noqa: F401  (puts scripts/ on the path)
from kmlab import stats


class MannWhitney(unittest.TestCase):
    # Values computed by hand from the rank sums.
    def test_complete_separation_exact(self):
        u, p = stats.mann_whitney_u([1, 2, 3], [4, 5, 6])
        self.assertEqual(u, 0)  # R1 = 1+2+3 = 6, U1 = 6 - 3*4/2 = 0
        self.assertAlmostEqual(p, 0.1)  # 2 * P(U <= 0) = 2 * 1/20

    def test_interleaved_exact(self):
        u, p = stats.mann_whitney_u([1, 3, 5], [2, 4, 6])
        self.assertEqual(u, 3)  # R1 = 1+3+5 = 9, U1 = 9 - 6 = 3
        self.assertAlmostEqual(p, 0.7)  # P(U <= 3) = (1+1+2+3)/20 = 7/20, doubled

    def test_large_samples_use_the_normal_approximation(self):
        a = list(range(0, 30))
        b = list(range(100, 130))
        u, p = stats.mann_whitney_u(a, b)
        self.assertEqual(u, 0)
        self.assertLess(p, 1e-6)
        _, p_same = stats.mann_whitney_u(a, a)
        self.assertGreater(p_same, 0.9)

    def test_ties_are_ranked_by_their_mean(self):
        u, p = stats.mann_whitney_u([1, 2, 2], [2, 3, 4])
        self.assertEqual(u, 1)  # ranks 1, 3, 3 -> R1 = 7, U1 = 7 - 6 = 1
        self.assertGreater(p, 0.05)


class HodgesLehmann(unittest.TestCase):
    def test_shift_interval_by_hand(self):
        # x - y over all 25 pairs is 9 + (a - b) for a, b in 0..4: the values
        # 5..13 with multiplicities 1 2 3 4 5 4 3 2 1. Their median (13th) is 9.
        # For 5 and 5 the exact U distribution (252 arrangements) has
        # P(U <= 2) = 4/252 <= 0.025 < P(U <= 3) = 7/252, so k = 3: the 3rd
        # smallest difference (6) to the 3rd largest (12), at 1 - 8/252.
        iv = stats.shift_interval([10, 11, 12, 13, 14], [1, 2, 3, 4, 5])
        self.assertEqual((iv.estimate, iv.low, iv.high), (9, 6, 12))
        self.assertAlmostEqual(iv.confidence, 1 - 8 / 252)

    def test_four_each_is_the_fewest_for_95_percent(self):
        # 4 and 4: P(U <= 0) = 1/70 <= 0.025 < P(U <= 1) = 2/70, so k = 1:
        # the smallest to the largest difference, at 1 - 2/70. Differences
        # x - y run from 1 - 8 = -7 to 4 - 5 = -1; their median is -4.
        iv = stats.shift_interval([1, 2, 3, 4], [5, 6, 7, 8])
        self.assertEqual((iv.estimate, iv.low, iv.high), (-4, -7, -1))
        self.assertAlmostEqual(iv.confidence, 1 - 2 / 70)
        # 3 and 3: even the widest interval is only 90% (2/20 outside): none.
        iv3 = stats.shift_interval([1, 2, 3], [4, 5, 6])
        self.assertEqual(iv3.estimate, -3)
        self.assertIsNone(iv3.low)
        self.assertIsNone(iv3.confidence)

    def test_ratio_interval_on_logarithms(self):
        # Powers of two: the log2 differences are those of the shift test
        # above, so the ratio is 2^9 with the interval 2^6 .. 2^12.
        iv = stats.ratio_interval([2.0 ** k for k in range(10, 15)], [2.0 ** k for k in range(1, 6)])
        self.assertAlmostEqual(iv.estimate, 512)
        self.assertAlmostEqual(iv.low, 64)
        self.assertAlmostEqual(iv.high, 4096)
        self.assertEqual(iv.excludes, 1)
        self.assertIsNone(stats.ratio_interval([1.0, 0.0], [1.0]), "no ratio of a zero")
        one = stats.ratio_interval([6.0], [12.0])
        self.assertAlmostEqual(one.estimate, 0.5)
        self.assertIsNone(one.low, "one repetition: a ratio, no interval")

    def test_large_samples_use_the_normal_approximation(self):
        x = [10 + (i % 7) * 0.1 for i in range(40)]
        y = [8 + (i % 5) * 0.1 for i in range(40)]
        iv = stats.shift_interval(x, y)
        self.assertAlmostEqual(iv.confidence, 0.95)
        self.assertLess(iv.low, iv.estimate)
        self.assertLess(iv.estimate, iv.high)
        self.assertTrue(1.5 < iv.low and iv.high < 2.5)

    def test_formatting(self):
        self.assertEqual(stats.fmt_interval(stats.Interval(0.5, 0.49, 0.51, 0.97)), "0.50x [0.49-0.51x]")
        self.assertEqual(stats.fmt_interval(stats.Interval(30.2, 25.0, 41.7, 0.97)), "30.2x [25.0-41.7x]")
        self.assertEqual(stats.fmt_interval(stats.Interval(0.5, None, None, None)), "0.50x [no 95% CI]")
        self.assertEqual(stats.fmt_ratio(9.99999999), "10.0x")


class Repetitions(unittest.TestCase):
    def test_the_smallest_p_and_the_repetitions_a_level_needs(self):
        self.assertAlmostEqual(stats.smallest_p(3, 3), 0.1)         # 2 / C(6, 3)
        self.assertAlmostEqual(stats.smallest_p(5, 5), 2 / 252)
        self.assertEqual(stats.smallest_p(1, 1), 1.0)
        self.assertEqual(stats.repetitions_needed(0.05), 4)         # 2 / 70 < 0.05 < 2 / 20
        self.assertEqual(stats.repetitions_needed(0.01), 5)         # 2 / 252 < 0.01 < 2 / 70
        self.assertEqual(stats.repetitions_needed(0.001), 7)        # 2 / 3432 < 0.001 < 2 / 924

    def test_holm(self):
        # Sorted p against alpha / (m - i): 0.001 <= 0.05/3, 0.01 <= 0.05/2, 0.04 <= 0.05/1.
        self.assertEqual(stats.holm_significant([0.04, 0.001, 0.01], 0.05), 3)
        # 0.03 > 0.05/2 stops the steps: the 0.04 after it is not significant either.
        self.assertEqual(stats.holm_significant([0.001, 0.03, 0.04], 0.05), 1)
        self.assertEqual(stats.holm_significant([0.2], 0.05), 0)
        self.assertAlmostEqual(stats.geometric_mean([2, 8]), 4)
        self.assertTrue(math.isnan(stats.geometric_mean([])))


if __name__ == "__main__":
    unittest.main()
