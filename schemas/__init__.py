"""The contracts, pure code: event types and their check, identities and pseudonyms, reference
data, the partners registry, business days, the rejects topics' headers, the error kinds.

Others use: events (types, JSON Schemas), pipeline (check_event, claimed_event_id),
pseudonym (Pseudonymiser, load_key_file), identity, reference, partners (load_registry),
topics, days, rejects, errors. Everything else here serves these.
"""
