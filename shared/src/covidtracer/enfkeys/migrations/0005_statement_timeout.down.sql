DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I RESET statement_timeout', current_database());
END
$$;
