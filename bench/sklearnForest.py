"""scikit-learn baseline for bench:training (run by bench/training.ts, not by hand).

What a user of the existing pipeline does: read the batch CSVs, ordinal-encode the text columns,
take month and day of week from the issue date, fit RandomForestClassifier(n_estimators=50,
max_features='sqrt', n_jobs=2) and score the held-out week. The training rows are the ones
green-ml trains on (invoice-id hash outside the holdout fraction), so both fit the same rows.

argv: JSON {"train": [csv...], "test": csv, "trees": n, "jobs": n, "seed": n, "holdoutFraction": f}
stdout: one JSON line with the timings, peak RSS and held-out accuracy.
"""

import csv
import datetime
import json
import resource
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import OrdinalEncoder

CATEGORICAL = ["supplierId", "supplierCountry", "receiverId", "accountCode", "currency", "reverseCharge"]
NUMERIC = ["amountNet", "lineCount"]


def fnv1a32(text, salt=0):
    """shared/model/random.ts fnv1a32 over UTF-16 code units (ids are ASCII)."""
    h = (0x811C9DC5 ^ salt) & 0xFFFFFFFF
    for ch in text:
        h ^= ord(ch)
        h = (h * 0x01000193) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    return h


def read(files, keep):
    cats, nums, dates, labels = [], [], [], []
    for name in files:
        with open(name, newline="") as handle:
            for row in csv.DictReader(handle):
                if not keep(row["invoiceId"]):
                    continue
                cats.append([row[c] for c in CATEGORICAL])
                nums.append([float(row[c]) for c in NUMERIC])
                day = datetime.date.fromisoformat(row["issuedAt"][:10])
                dates.append([day.month, day.weekday()])
                labels.append(row["vatRatePercent"])
    return cats, np.array(nums), np.array(dates), np.array(labels)


def main():
    spec = json.loads(sys.argv[1])
    holdout = spec["holdoutFraction"]
    started = time.perf_counter()
    cats, nums, dates, y = read(spec["train"], lambda i: fnv1a32(i) / 2**32 >= holdout)
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    x = np.hstack([encoder.fit_transform(cats), nums, dates]).astype(np.float32)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    cpu_started = time.process_time()
    forest = RandomForestClassifier(
        n_estimators=spec["trees"], max_features="sqrt", n_jobs=spec["jobs"], random_state=spec["seed"]
    )
    forest.fit(x, y)
    fit_seconds = time.perf_counter() - started
    fit_cpu_seconds = time.process_time() - cpu_started

    test_cats, test_nums, test_dates, test_y = read([spec["test"]], lambda i: True)
    x_test = np.hstack([encoder.transform(test_cats), test_nums, test_dates]).astype(np.float32)
    started = time.perf_counter()
    accuracy = float((forest.predict(x_test) == test_y).mean())
    predict_seconds = time.perf_counter() - started

    print(
        json.dumps(
            {
                "version": sklearn.__version__,
                "loadSeconds": load_seconds,
                "fitSeconds": fit_seconds,
                "fitCpuSeconds": fit_cpu_seconds,
                "predictSeconds": predict_seconds,
                "trainRows": int(len(y)),
                "testRows": int(len(test_y)),
                "accuracy": accuracy,
                # Linux reports ru_maxrss in KiB.
                "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
