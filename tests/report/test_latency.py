"""The latency histogram as the report reads it from the JSON: the encoding
the harness writes, percentiles by the harness's own rule (checked against a
known distribution), and the CDF the charts draw."""

import json
import math
import unittest

from fixtures import entry, gb_json, label_of
from kmlab import latency, results


class Buckets(unittest.TestCase):
    def test_buckets_are_at_most_a_thirty_second_of_their_values(self):
        for v in list(range(0, 5000)) + [2 ** p + d for p in range(13, 63) for d in (-1, 0, 1)]:
            i = latency.index(v)
            self.assertLessEqual(latency.lowest(i), v)
            self.assertGreaterEqual(latency.highest(i), v)
            width = latency.highest(i) - latency.lowest(i) + 1
            self.assertTrue(width == 1 if v < 64 else width * 32 <= v, v)

    def test_the_harness_encoding_decodes(self):
        # The string the C++ test expects from encode() for 5 x3, 100, 101, 10000.
        h = latency.parse("latency_ns/32: min=5 max=10000 5:3 100:2 9984:1")
        self.assertEqual(h.total, 6)
        self.assertEqual((h.min, h.max), (5, 10000))
        self.assertEqual(h.quantile(0.5), 5)
        self.assertEqual(h.quantile(0.99), 10000, "clamped to the largest value recorded")
        self.assertIsNone(latency.parse("a label"))
        with self.assertRaises(ValueError):
            latency.parse("latency_ns/32: 101:1")  # 101 is inside the bucket 100-101, not its lowest value


class Percentiles(unittest.TestCase):
    def test_a_known_distribution(self):
        # Exponential, mean 2000 ns, sampled at evenly spaced quantiles: the
        # q-quantile is -2000 ln(1 - q); the histogram's answer never
        # understates and overstates by less than one bucket (1/32).
        n = 100000
        values = [int(-2000 * math.log(1 - (i + 0.5) / n)) for i in range(n)]
        h = latency.parse(label_of(values))
        for q in (0.5, 0.99, 0.999):
            exact = sorted(values)[max(1, int(q * n + 0.5)) - 1]
            got = h.quantile(q)
            self.assertGreaterEqual(got, exact, q)
            self.assertLessEqual(got, exact * (1 + 1 / 32), q)
            self.assertAlmostEqual(got, -2000 * math.log(1 - q), delta=-2000 * math.log(1 - q) / 32 + 2)

    def test_two_values(self):
        # 99% at 100 ns and 1% at 10 us, as in the C++ test: the same answers.
        h = latency.parse(label_of([100] * 990 + [10000] * 10))
        self.assertEqual(h.quantile(0.99), 101)
        self.assertEqual(h.quantile(0.999), 10000)

    def test_records_take_their_percentiles_from_the_histogram(self):
        values = list(range(1, 20001))
        data = gb_json([entry("BM_Latency<std::mutex>/threads:2", rep, label=label_of(values), p50_ns=9999999.0,
                              p99_ns=9999999.0, p999_ns=9999999.0, max_ns=20000.0) for rep in range(2)])
        [rec] = results.records_from(json.loads(json.dumps(data)))
        self.assertEqual(len(rec.histograms), 2)
        self.assertEqual(rec.values["p50_ns"], [10239.0, 10239.0], "10000's bucket 9984-10239, not the counter")
        self.assertLessEqual(rec.values["p99_ns"][0], 19800 * (1 + 1 / 32))
        merged = latency.merge(rec.histograms)
        self.assertEqual(merged.total, 40000)
        cdf = merged.cdf()
        self.assertEqual(cdf[-1], (20000, 1.0))
        self.assertTrue(all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(cdf, cdf[1:])))

    def test_a_corrupt_histogram_is_a_clear_error(self):
        data = gb_json([entry("BM_Latency<std::mutex>/threads:2", 0, label="latency_ns/32: 5:x")])
        with self.assertRaises(results.LabError) as e:
            results.records_from(data, source="S6.json")
        self.assertIn("S6.json", str(e.exception))


if __name__ == "__main__":
    unittest.main()
