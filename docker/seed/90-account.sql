-- The source account of the Airflow connection `polardb_default` (AIRFLOW_CONN_POLARDB_DEFAULT in
-- docker-compose.yaml), with what the migration needs and nothing more:
--   SELECT on the migrated databases          catalog, prechecks, full load, filters
--   REPLICATION SLAVE                         reading the binary log (incremental migration)
--   BINLOG MONITOR (MySQL: REPLICATION CLIENT) SHOW MASTER STATUS / SHOW BINARY LOGS (coordinates)
--   CREATE, INSERT, UPDATE on the heartbeat   heartbeat.table of the spec, written every interval
CREATE USER 'polar_mc'@'%' IDENTIFIED BY 'polar_mc_demo';
GRANT SELECT ON shop.* TO 'polar_mc'@'%';
GRANT SELECT ON crm.* TO 'polar_mc'@'%';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'polar_mc'@'%';
GRANT CREATE, INSERT, UPDATE ON shop.polar_mc_heartbeat TO 'polar_mc'@'%';
