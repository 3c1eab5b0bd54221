-- Where each event appended on :d ended up: reflected in the warehouse (a fact row, a change
-- applied to one, a control totals row), quarantined by validation, flagged by a discrepancy
-- naming it, or nowhere (unaccounted: a silent drop, which must never happen).
SELECT e.partner_id, e.event_id, e.family, CASE
    WHEN CASE e.family
        WHEN 'enrollment.created' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_enrollment f WHERE f.person = e.person
              AND f.partner_id = e.partner_id AND f.event_id = e.event_id)
        WHEN 'enrollment.withdrawn' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_enrollment f WHERE f.person = e.person
              AND f.partner_id = e.partner_id AND f.withdrawal_event_id = e.event_id)
        WHEN 'completion.recorded' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_completion f WHERE f.person = e.person
              AND f.partner_id = e.partner_id AND f.event_id = e.event_id)
        WHEN 'evaluation.recorded' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_evaluation f WHERE f.person = e.person
              AND f.partner_id = e.partner_id AND f.event_id = e.event_id)
        WHEN 'evaluation.corrected' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_evaluation f WHERE f.person = e.person
              AND f.partner_id = e.partner_id AND e.event_id = ANY(f.correction_event_ids))
        WHEN 'certificate.issued' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_certificate f WHERE f.person = e.person
              AND f.partner_id = e.partner_id AND f.event_id = e.event_id)
        WHEN 'certificate.revoked' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_certificate f WHERE f.person = e.person
              AND f.revocation_partner_id = e.partner_id AND f.revocation_event_id = e.event_id)
        WHEN 'control.totals' THEN EXISTS (
            SELECT 1 FROM warehouse.fact_control_totals f
            WHERE f.partner_id = e.partner_id AND f.event_id = e.event_id)
        ELSE false END THEN 'reflected'
    WHEN EXISTS (SELECT 1 FROM ops.quarantine q
                 WHERE q.partner_id = e.partner_id AND q.event_id = e.event_id)
        THEN 'quarantined'
    WHEN EXISTS (SELECT 1 FROM warehouse.discrepancy d
                 WHERE d.partner_id = e.partner_id AND d.event_id = e.event_id)
        THEN 'flagged'
    ELSE 'unaccounted' END AS outcome
FROM staging.events e
WHERE e.append_day = :d
