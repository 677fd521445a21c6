"""LPA's SupCon targets from the class attribute vectors a(y), and how their weight spreads in a batch."""
