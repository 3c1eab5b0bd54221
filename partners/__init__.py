"""What partners use: the publishing kit (kit, `python -m partners publish | rejects`) and
sample events (samples); and the seeded simulator of the city's partners (simulate, faults).
"""
