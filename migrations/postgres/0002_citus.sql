-- Citus scale-out: when the citus extension is installed, distribute `records` by its
-- primary key (co-located lookups by transaction_id hit one shard) and
-- `idempotency_keys` by its key. Without Citus this migration does nothing.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'records'::regclass) THEN
            PERFORM create_distributed_table('records', 'transaction_id');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'idempotency_keys'::regclass) THEN
            PERFORM create_distributed_table('idempotency_keys', 'key');
        END IF;
    END IF;
END
$$;
