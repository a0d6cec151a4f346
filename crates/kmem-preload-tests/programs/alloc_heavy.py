"""An allocation-heavy Python program with deterministic output.

Run by the preload tests with and without LD_PRELOAD (and with
PYTHONMALLOC=malloc, so that every Python object goes through malloc rather
than pymalloc's arenas); the two outputs must be identical byte for byte.
It builds and tears down dicts, lists, sets, strings, bytes, nested objects
with reference cycles (collected by gc), and round-trips a large document
through json; it prints digests, never addresses or timings.
"""

import gc
import hashlib
import json
import random
import sys


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def strings(rng):
    words = ["".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 12))) for _ in range(20000)]
    text = " ".join(words)
    pieces = text.split(" ")
    joined = "-".join(sorted(set(pieces)))
    upper = joined.upper().replace("A", "aa")
    buf = []
    for i, w in enumerate(pieces):
        buf.append(f"{i}:{w}:{len(w)}")
    return digest((len(joined), upper[:200], "|".join(buf[:5000])))


def dicts(rng):
    d = {}
    for i in range(200000):
        d[f"key{rng.randrange(100000)}"] = [i, str(i), (i, i * 2)]
    for k in list(d)[::3]:
        del d[k]
    nested = {k: {"v": v, "s": {str(x) for x in range(len(k))}} for k, v in list(d.items())[:20000]}
    return digest((len(d), sorted(d)[:50], sorted(nested)[-50:]))


def lists(rng):
    xs = [rng.random() for _ in range(300000)]
    xs.sort()
    chunks = [xs[i : i + 37] for i in range(0, len(xs), 37)]
    grown = []
    for c in chunks:
        grown.extend(c)
        grown.append(len(c))
        if len(grown) > 50000:
            del grown[: len(grown) // 2]
    b = bytearray()
    for i in range(100000):
        b += bytes([i % 251]) * (i % 7)
    return digest((len(chunks), round(sum(grown), 6), len(b), hashlib.sha256(b).hexdigest()))


class Node:
    def __init__(self, value):
        self.value = value
        self.children = []
        self.parent = None


def cycles(rng):
    gc.collect()
    total = 0
    for round_ in range(30):
        nodes = [Node(i) for i in range(5000)]
        for n in nodes[1:]:
            p = nodes[rng.randrange(n.value)]
            n.parent = p
            p.children.append(n)
        total += sum(len(n.children) for n in nodes)
        del nodes
        total += gc.collect()
    return total


def json_round_trip(rng):
    doc = {
        "users": [
            {
                "id": i,
                "name": f"user{i}",
                "tags": [f"t{rng.randrange(50)}" for _ in range(rng.randrange(8))],
                "score": rng.randrange(10**6) / 1000,
                "nested": {"a": [1, 2, {"b": "c" * (i % 30)}]},
            }
            for i in range(30000)
        ]
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    again = json.dumps(back, sort_keys=True)
    assert text == again
    return len(text), hashlib.sha256(text.encode()).hexdigest()[:16]


def main():
    rng = random.Random(12345)
    print("strings", strings(rng))
    print("dicts", dicts(rng))
    print("lists", lists(rng))
    print("cycles", cycles(rng))
    print("json", *json_round_trip(rng))
    print("ok", sys.version_info[:2] >= (3, 0))


if __name__ == "__main__":
    main()
