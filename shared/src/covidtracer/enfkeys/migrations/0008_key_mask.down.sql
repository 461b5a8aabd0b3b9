DROP FUNCTION unmask_keys(bytea[], bytea, bytea);
DROP TABLE key_mask;
