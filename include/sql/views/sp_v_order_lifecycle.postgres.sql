-- One row per order: when it was first seen shipped, cancelled and with every package delivered
-- (from sp_order_status_history, i.e. the last_updated_time of the first version observed in that
-- state), and the hours from purchase to each. NULL when not (yet) observed.
SELECT
    o.order_id,
    o.marketplace_id,
    o.fulfilled_by,
    o.order_status,
    o.created_time,
    h.shipped_time,
    h.cancelled_time,
    h.delivered_time,
    EXTRACT(EPOCH FROM (h.shipped_time - o.created_time)) / 3600.0 AS hours_to_ship,
    EXTRACT(EPOCH FROM (h.cancelled_time - o.created_time)) / 3600.0 AS hours_to_cancel,
    EXTRACT(EPOCH FROM (h.delivered_time - o.created_time)) / 3600.0 AS hours_to_delivery
FROM sp_orders o
LEFT JOIN (
    SELECT
        order_id,
        MIN(CASE WHEN order_status = 'SHIPPED' THEN last_updated_time END) AS shipped_time,
        MIN(CASE WHEN order_status = 'CANCELLED' THEN last_updated_time END) AS cancelled_time,
        MIN(CASE WHEN packages_delivered THEN last_updated_time END) AS delivered_time
    FROM sp_order_status_history
    GROUP BY order_id
) h ON h.order_id = o.order_id
