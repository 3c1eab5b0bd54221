"""The night's reconciliation: which people and days a load restates, and its statements in order.

A load of business day D restates two things, so its cost follows D's events, not history:

- the records of every person an event appended on D names (and of the holders of any
  certificate number issued on D), wherever those records are filed: their facts, subsidy
  decisions and findings are recomputed from all of their events visible at the horizon;
- the partner-level figures (control totals, their gaps, scorecards) of D and of the days
  within the look-back that D's events were sent on or report totals for.

The horizon H is the latest business day loaded. What the warehouse holds is a function of the
staging rows appended up to H alone, so reruns, backfills and loads in any order agree
(docs/warehouse.md gives the rules and what a reader sees).
"""

from __future__ import annotations

from warehouse.sql import names

HORIZON = "night/00_horizon"
SCOPE_DAYS = "night/02_scope_days"
# Temporary tables of the people restated, their events, and their records read from them.
SCOPE = ("night/01_scope_persons", "night/03_night_events")
INTERMEDIATE = names("night", "1")
# Temporary tables read through person look-ups: the planner needs an index and statistics.
INDEXED = {"int_enrollments": "person", "int_evaluations": "person"}
DELETES = ("night/20_delete_person_facts", "night/21_delete_day_figures")
DIMENSIONS = names("night", "3")
# Each fact statement, under the table it fills (its row count is the load's record).
FACTS = {
    "fact_enrollment": "night/40_fact_enrollment",
    "fact_completion": "night/41_fact_completion",
    "fact_evaluation": "night/42_fact_evaluation",
    "fact_certificate": "night/43_fact_certificate",
    "fact_subsidy_eligibility": "night/44_fact_subsidy_eligibility",
}
PERSON_DISCREPANCIES = names("night", "5")
CONTROL_TOTALS = "night/60_fact_control_totals"
DAY_DISCREPANCIES = "night/61_discrepancy_control_totals"
SCORECARD = "night/62_partner_scorecard"
