-- A server-side limit on every statement of this database's sessions: PostgreSQL cancels a
-- statement still running after 10 s, behind the client's own deadlines (connect 3 s, 8 s
-- per wait: docs/operations.md, "Time budget"), so a statement whose client gave up does not
-- run on. It is the database's own setting, applied when a session starts, because the
-- other ways fail behind RDS Proxy: a startup option (`options=-c statement_timeout=…`) is
-- refused ("RDS Proxy currently doesn't support command-line options"), and a SET from the
-- client pins the connection ("Using SET commands", AWS RDS User Guide, "Avoiding pinning
-- an RDS Proxy"). Migrations lift it for their own session (covidtracer.migrations).
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '10s');
END
$$;
