-- hd_ts was declared STRICT, and its body (GREATEST/LEAST, which skip NULLs) cannot be
-- proved strict, so PostgreSQL never inlined it: every moment written ran the function
-- as a query of its own, planned anew in each statement (a pg_stat_statements profile of
-- filing: 38 calls per mail, a sixth of the statements' planning time). The same clamp
-- written with CASE passes NULL through by itself, so the function need not be STRICT,
-- and a non-STRICT SQL function of one expression is inlined into the calling query.
CREATE OR REPLACE FUNCTION hd_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_timestamp((CASE WHEN ms < -210000000000000 THEN -210000000000000
                                    WHEN ms > 9000000000000000 THEN 9000000000000000
                                    ELSE ms END) / 1000.0) $$;
