DELETE FROM sayiir.events
WHERE id = (
    SELECT id FROM sayiir.events
    WHERE instance_id = $1 AND signal_name = $2
    ORDER BY id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING payload
