"""The ingestion service: `python -m consumers run | status | replay`.

Others use: service (IngestService), records (judge_record: one record's verdict), landing
(Lander, the staging row types), replay (replay_rejects). Everything else serves these.
"""
