#!/usr/bin/env python3
"""Generate the programmatic share of Hearth's calibration set: arithmetic drills,
Markdown tables and CSV snippets with varied content. Deterministic (fixed seed).
Output goes to stdout; the hand-written parts of calibration.txt do not come from here."""
import random

rng = random.Random(20261123)
out = []

def arithmetic(n):
    for _ in range(n):
        kind = rng.choice(["add", "sub", "mul", "div", "frac", "pct", "pow", "mix"])
        if kind == "add":
            a, b = rng.randint(10, 99999), rng.randint(10, 99999)
            out.append(f"{a:,} + {b:,} = {a + b:,}")
        elif kind == "sub":
            a, b = sorted((rng.randint(1, 50000), rng.randint(1, 50000)), reverse=True)
            out.append(f"{a} - {b} = {a - b}")
        elif kind == "mul":
            a, b = rng.randint(2, 999), rng.randint(2, 99)
            out.append(f"{a} × {b} = {a * b}")
        elif kind == "div":
            b = rng.randint(2, 40); q = rng.randint(2, 500); r = rng.randint(0, b - 1)
            a = b * q + r
            out.append(f"{a} ÷ {b} = {q} remainder {r}" if r else f"{a} / {b} = {q}")
        elif kind == "frac":
            a, b, c, d = (rng.randint(1, 9) for _ in range(4))
            from fractions import Fraction
            s = Fraction(a, b + 1) + Fraction(c, d + 1)
            out.append(f"{a}/{b + 1} + {c}/{d + 1} = {s.numerator}/{s.denominator}" if s.denominator != 1 else f"{a}/{b + 1} + {c}/{d + 1} = {s.numerator}")
        elif kind == "pct":
            p = rng.choice([5, 10, 12.5, 15, 20, 25, 30, 40, 75]); x = rng.randint(2, 400) * 4
            out.append(f"{p}% of {x} is {p * x / 100:g}")
        elif kind == "pow":
            b = rng.randint(2, 12); e = rng.randint(2, 6)
            out.append(f"{b}^{e} = {b ** e}")
        else:
            a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 30)
            out.append(f"({a} + {b}) × {c} = {a + b} × {c} = {(a + b) * c}")

def md_table(title, header, rows, align=None):
    out.append(title)
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join(align or ["---"] * len(header)) + "|")
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    out.append("")

months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
produce = ["carrots", "leeks", "apples", "pears", "potatoes", "kale", "onions", "beetroot",
           "cabbage", "garlic", "squash", "spinach", "plums", "tomatoes", "beans", "radishes"]
langs = ["C", "Python", "Rust", "Go", "JavaScript", "SQL", "Shell", "Java", "Kotlin", "Zig"]
first = ["Ana", "Bo", "Chidi", "Dana", "Eero", "Farah", "Goran", "Hana", "Ines", "Jun", "Kofi",
         "Lena", "Mateo", "Nour", "Olek", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vik"]
last = ["Adler", "Baptiste", "Castro", "Dube", "Eriksen", "Fujita", "Gallo", "Haddad", "Ivanova",
        "Jensen", "Kaur", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe", "Rossi"]

def tables():
    for t in range(9):
        kind = t % 5
        if kind == 0:
            rows = []
            for m in months:
                lo = rng.randint(-8, 14); hi = lo + rng.randint(5, 14)
                rows.append((m, lo, hi, rng.randint(8, 160), rng.randint(1, 12)))
            md_table(f"Monthly climate summary, station {rng.randint(100, 999)}:",
                     ["Month", "Min °C", "Max °C", "Rain mm", "Sun h/day"], rows,
                     ["---", "---:", "---:", "---:", "---:"])
        elif kind == 1:
            rows = []
            for p in rng.sample(produce, 8):
                kg = round(rng.uniform(0.5, 40), 1); price = round(rng.uniform(0.6, 6.5), 2)
                rows.append((p, kg, f"{price:.2f}", f"{kg * price:.2f}"))
            md_table("Market stall sales for the week:", ["Item", "kg sold", "Price/kg", "Revenue"], rows,
                     ["---", "---:", "---:", "---:"])
        elif kind == 2:
            rows = []
            for l in rng.sample(langs, 6):
                rows.append((l, rng.randint(1, 400), rng.randint(0, 60), f"{rng.uniform(50, 99):.1f}%"))
            md_table("Repository statistics by language:", ["Language", "Files", "Open issues", "Test coverage"], rows)
        elif kind == 3:
            out.append("id,name,team,start_date,hours,rate")
            for i in range(12):
                n = f"{rng.choice(first)} {rng.choice(last)}"
                d = f"202{rng.randint(0, 5)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                out.append(f"{1000 + i},{n},{rng.choice(['infra', 'ui', 'data', 'support', 'research'])},{d},{rng.randint(4, 42)},{rng.randint(18, 95)}.{rng.choice(['00', '50', '25'])}")
            out.append("")
        else:
            out.append("timestamp,sensor,temperature_c,humidity_pct,co2_ppm")
            h = rng.randint(0, 12)
            for i in range(14):
                out.append(f"2026-03-{rng.randint(1, 28):02d}T{(h + i) % 24:02d}:{rng.choice(['00', '15', '30', '45'])}:00Z,"
                           f"room-{rng.randint(1, 4)},{rng.uniform(17, 26):.1f},{rng.randint(28, 71)},{rng.randint(410, 1400)}")
            out.append("")

def times_table():
    n = rng.randint(6, 13)
    out.append(f"Multiplication table for {n}:")
    out.append("  ".join(f"{n}×{k}={n * k}" for k in range(1, 13)))
    out.append("")

def conversions():
    out.append("| km | miles | | kg | lb | | °C | °F |")
    out.append("|---:|---:|---|---:|---:|---|---:|---:|")
    for _ in range(10):
        km = rng.randint(1, 500); kg = rng.randint(1, 120); c = rng.randint(-30, 45)
        out.append(f"| {km} | {km / 1.609344:.1f} | | {kg} | {kg * 2.20462:.1f} | | {c} | {c * 9 / 5 + 32:.1f} |")
    out.append("")

for block in range(10):
    out.append("Arithmetic practice:")
    arithmetic(rng.randint(25, 40))
    out.append("")
    times_table()
tables()
conversions()
tables()
conversions()
tables()
print("\n".join(out))
