#!/usr/bin/env python3
"""Print the bench table (median, bound, ratio) from criterion's output.

Usage: python3 core/benches/report.py [target/criterion]
"""
import json, os, sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
def median(group, fn):
    p = os.path.join(root, group, fn, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["median"]["point_estimate"]

def fmt(ns):
    return "-" if ns is None else (f"{ns/1e6:.3f} ms" if ns >= 1e6 else f"{ns/1e3:.2f} µs")

rows = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and d != "report")
print(f"| operation | Pawl (median) | primitive bound | ratio |")
print(f"|---|---|---|---|")
for g in rows:
    p, b = median(g, "pawl"), median(g, "bound")
    ratio = f"{p/b:.2f}x" if p and b else "-"
    print(f"| {g} | {fmt(p)} | {fmt(b)} | {ratio} |")
