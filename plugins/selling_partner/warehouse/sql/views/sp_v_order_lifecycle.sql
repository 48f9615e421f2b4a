-- One row per order: when it shipped, was cancelled and had every package delivered - as far as the
-- warehouse can know - and the hours from purchase to each.
--
-- sp_order_status_history holds only the versions the warehouse observed. A historical backfill sees
-- each order once, in its current state, so it cannot know when the earlier changes happened:
--   <state>_observed_time       last_updated_time of the first version observed in that state; the
--                               change happened at or before it (an upper bound).
--   <state>_transition_observed the warehouse also observed an earlier version (so the order was seen
--                               before it reached that state and the change is bracketed by the two
--                               versions); false = already in that state when first seen; NULL = never
--                               observed in that state.
--   shipped_time                the latest package ship_time of a SHIPPED FBM order whose status and
--                               packages come from the same complete record (Amazon's own time,
--                               shipped_time_source = 'packages'); else shipped_observed_time when the
--                               transition was observed ('observed'); else NULL.
--   cancelled_time, delivered_time  the observed time when the transition was observed, else NULL.
--   hours_to_*                  from created_time to the *_time columns: NULL rather than wrong.
WITH h AS (
    SELECT
        order_id,
        MIN(last_updated_time) AS first_observed_time,
        MIN(CASE WHEN order_status = 'SHIPPED' THEN last_updated_time END) AS shipped_observed_time,
        MIN(CASE WHEN order_status = 'CANCELLED' THEN last_updated_time END) AS cancelled_observed_time,
        MIN(CASE WHEN packages_delivered THEN last_updated_time END) AS delivered_observed_time
    FROM sp_order_status_history
    GROUP BY order_id
),
p AS (
    SELECT
        order_id,
        COUNT(*) AS packages,
        COUNT(ship_time) AS packages_with_ship_time,
        MAX(ship_time) AS last_ship_time
    FROM sp_order_packages
    GROUP BY order_id
),
t AS (
    SELECT
        o.order_id,
        o.marketplace_id,
        o.fulfilled_by,
        o.order_status,
        o.created_time,
        h.first_observed_time,
        h.shipped_observed_time,
        h.shipped_observed_time > h.first_observed_time AS shipped_transition_observed,
        h.cancelled_observed_time,
        h.cancelled_observed_time > h.first_observed_time AS cancel_transition_observed,
        h.delivered_observed_time,
        h.delivered_observed_time > h.first_observed_time AS delivery_transition_observed,
        CASE
            WHEN o.order_status = 'SHIPPED' AND o.status_from_complete
                AND p.packages = p.packages_with_ship_time THEN p.last_ship_time
        END AS package_ship_time
    FROM sp_orders o
    LEFT JOIN h ON h.order_id = o.order_id
    LEFT JOIN p ON p.order_id = o.order_id
),
e AS (
    SELECT
        t.*,
        CASE
            WHEN package_ship_time IS NOT NULL THEN package_ship_time
            WHEN shipped_transition_observed THEN shipped_observed_time
        END AS shipped_time,
        CASE
            WHEN package_ship_time IS NOT NULL THEN 'packages'
            WHEN shipped_transition_observed THEN 'observed'
        END AS shipped_time_source,
        CASE WHEN cancel_transition_observed THEN cancelled_observed_time END AS cancelled_time,
        CASE WHEN delivery_transition_observed THEN delivered_observed_time END AS delivered_time
    FROM t
)
SELECT
    order_id,
    marketplace_id,
    fulfilled_by,
    order_status,
    created_time,
    first_observed_time,
    shipped_time,
    shipped_time_source,
    shipped_observed_time,
    shipped_transition_observed,
    cancelled_time,
    cancelled_observed_time,
    cancel_transition_observed,
    delivered_time,
    delivered_observed_time,
    delivery_transition_observed,
    {{hours_between(created_time, shipped_time)}} AS hours_to_ship,
    {{hours_between(created_time, cancelled_time)}} AS hours_to_cancel,
    {{hours_between(created_time, delivered_time)}} AS hours_to_delivery
FROM e
