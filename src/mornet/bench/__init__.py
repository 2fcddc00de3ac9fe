"""Benchmarks: tools that start real engines, drive the platform's code hard, and print one
JSON line saying what they measured. Above every context; no context imports them."""
