-- Usage log row layouts on PostgreSQL, bytes per row (issue 14, target 6: <= 150 with indexes).
-- 1,000,000 synthetic rows with real-length ids (key_ + 22, acct_ + 22), 2,000 keys (Zipf-like),
-- 500 accounts, 24 hours, laid out three ways, each with the indexes the views read:
--   u_text  today's layout (migrations 0009/0010): ids, route, method and outcome as text
--   u_ref   every repeated string dictionary-encoded to an integer (names), the IP as inet
--   u_safe  only ids and closed vocabularies encoded; route, method (attacker-chosen on unmatched
--           requests) and the IP stay in the row, so retention still removes them
-- plus the coarse variants *_c (position / 1024: b-tree deduplication), a BRIN on position, and
-- today's layout with the id indexes keyed by hashtextextended(id, 0) as migration 0011 builds them (h_*).
--   psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE layouts' postgres
--   psql -h 127.0.0.1 -U postgres -q layouts -f tests/benchmarks/usage_row_layouts.sql
-- Results and what they mean: docs/benchmarks.md, "Sixth pass".
\timing off
DROP TABLE IF EXISTS u_text, u_ref, u_safe, names;
-- 1,000,000 rows: 2,000 keys (Zipf-like), 500 accounts, 50 IPs, 24 h
CREATE TABLE u_text AS
SELECT g::bigint AS position,
       (1764374400000000 + g::bigint * 86400)::bigint AS recorded_at_us,
       (1764374400000000 + g::bigint * 86400 - 300)::bigint AS occurred_at_us,
       'req_' || substr(md5(g::text), 1, 16) AS request_id,
       'key_' || substr(md5('k' || k), 1, 22) AS key_id,
       'acct_' || substr(md5('a' || (k % 500)), 1, 22) AS account_id,
       '198.51.' || (k % 50) || '.' || (k % 250 + 1) AS client_ip,
       CASE WHEN k % 3 = 0 THEN 'https://app' || k || '.example.com' END AS origin,
       'GET'::text AS method,
       (ARRAY['/v1/services','/v1/bookings','/v1/bookings/{booking_id}','/v1/availability'])[1 + g % 4] AS route,
       200::smallint AS status,
       (CASE WHEN g % 50 = 0 THEN 'rate_limited' ELSE 'ok' END) AS outcome,
       NULL::text AS detail,
       (200 + g % 4800)::int AS latency_us
FROM (SELECT g, floor(2000 * power(random(), 3))::int AS k FROM generate_series(1, 1000000) g) s;
CREATE TABLE names (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO names (name) SELECT DISTINCT key_id FROM u_text UNION SELECT DISTINCT account_id FROM u_text
  UNION SELECT DISTINCT route FROM u_text UNION SELECT DISTINCT outcome FROM u_text UNION SELECT 'GET';
CREATE TABLE u_ref AS
SELECT position, recorded_at_us, occurred_at_us,
       (SELECT id FROM names WHERE name = key_id) AS key_ref,
       (SELECT id FROM names WHERE name = account_id) AS account_ref,
       (SELECT id FROM names WHERE name = route) AS route_ref,
       (SELECT id FROM names WHERE name = method)::int AS method_ref,
       (SELECT id FROM names WHERE name = outcome)::smallint AS outcome_ref,
       0::smallint AS detail_ref,
       status, latency_us, request_id, client_ip::inet AS client_ip, coalesce(origin, '') AS origin
FROM u_text ORDER BY position;
CREATE TABLE u_safe AS
SELECT position, recorded_at_us, occurred_at_us, key_ref, account_ref, outcome_ref, detail_ref, status,
       latency_us, request_id, u_text.client_ip, u_text.origin, u_text.method, u_text.route
FROM u_ref JOIN u_text USING (position, recorded_at_us, occurred_at_us, status, latency_us, request_id)
ORDER BY position;
ALTER TABLE u_safe ADD PRIMARY KEY (position, recorded_at_us);
CREATE INDEX s_key ON u_safe (key_ref, position);
CREATE INDEX s_acct ON u_safe (account_ref, position);
CREATE INDEX s_acct_out ON u_safe (account_ref, outcome_ref, position);
ALTER TABLE u_text ADD PRIMARY KEY (position, recorded_at_us);
CREATE INDEX t_key ON u_text (key_id, position);
CREATE INDEX t_acct ON u_text (account_id, position);
CREATE INDEX t_acct_out ON u_text (account_id, outcome, position);
CREATE INDEX h_key ON u_text (hashtextextended(key_id, 0), position);
CREATE INDEX h_acct ON u_text (hashtextextended(account_id, 0), position);
CREATE INDEX h_acct_out ON u_text (hashtextextended(account_id, 0), outcome, position);
ALTER TABLE u_ref ADD PRIMARY KEY (position, recorded_at_us);
CREATE INDEX r_key ON u_ref (key_ref, position);
CREATE INDEX r_acct ON u_ref (account_ref, position);
CREATE INDEX r_acct_out ON u_ref (account_ref, outcome_ref, position);
CREATE INDEX r_key_c ON u_ref (key_ref, (position / 1024));
CREATE INDEX r_acct_c ON u_ref (account_ref, (position / 1024));
CREATE INDEX r_acct_out_c ON u_ref (account_ref, outcome_ref, (position / 1024));
CREATE INDEX r_brin ON u_ref USING brin (position);
VACUUM ANALYZE u_text; VACUUM ANALYZE u_ref; VACUUM ANALYZE u_safe;
SELECT relname, round(pg_relation_size(oid) / 1000000.0, 1) AS bytes_per_row FROM pg_class
WHERE relname ~ '^(u_|t_|r_|s_|h_)' AND relkind IN ('r', 'i') ORDER BY relname;
SELECT layout, round(sum(pg_relation_size(r::regclass)) / 1000000.0, 1) AS total_bytes_per_row
FROM (VALUES
  ('text ids, text indexes (0010)', ARRAY['u_text', 'u_text_pkey', 't_key', 't_acct', 't_acct_out']),
  ('text ids, hashed id indexes (0011)', ARRAY['u_text', 'u_text_pkey', 'h_key', 'h_acct', 'h_acct_out']),
  ('everything encoded', ARRAY['u_ref', 'u_ref_pkey', 'r_key', 'r_acct', 'r_acct_out']),
  ('ids and vocabularies encoded', ARRAY['u_safe', 'u_safe_pkey', 's_key', 's_acct', 's_acct_out']),
  ('everything encoded, coarse, BRIN', ARRAY['u_ref', 'r_brin', 'r_key_c', 'r_acct_c', 'r_acct_out_c'])
) AS l(layout, relations), unnest(relations) AS r
GROUP BY layout ORDER BY total_bytes_per_row DESC;
