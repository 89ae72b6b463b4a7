-- Source database `crm` of dags/migrations/example_shop.yaml (objects[1]: customers, orders, tickets).
SET NAMES utf8mb4;
CREATE DATABASE crm CHARACTER SET utf8mb4;
USE crm;

-- Migrated as crm_customers with the filter "status <> 'deleted' AND (region IN ('cn', 'sg'))" and the
-- column renames cust_id -> customer_id, record_id -> legacy_record_id (DTS adds its own record_id).
CREATE TABLE customers (
  cust_id INT PRIMARY KEY,
  record_id BIGINT NOT NULL,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(255),
  region CHAR(2) NOT NULL,
  status VARCHAR(16) NOT NULL,
  created_at DATETIME NOT NULL,
  UNIQUE KEY (record_id)
);

-- Migrated as crm_orders.
CREATE TABLE orders (
  order_id BIGINT PRIMARY KEY,
  cust_id INT NOT NULL,
  total DECIMAL(12, 2) NOT NULL,
  currency CHAR(3) NOT NULL,
  placed_at DATETIME(3) NOT NULL
);

-- Migrated under its own name (with the batch rename).
CREATE TABLE tickets (
  id INT AUTO_INCREMENT PRIMARY KEY,
  cust_id INT NOT NULL,
  subject VARCHAR(200) NOT NULL,
  priority TINYINT NOT NULL,
  opened_at DATETIME NOT NULL,
  closed_at DATETIME NULL
);

-- Not migrated: the spec lists crm's tables by name and this one is not among them.
CREATE TABLE sync_log (happened_at DATETIME NOT NULL, message TEXT);

INSERT INTO customers VALUES
  (1, 900001, 'Li Wei', 'li.wei@example.com', 'cn', 'active', '2024-02-01 08:00:00'),
  (2, 900002, 'Tan Mei Ling', 'meiling@example.com', 'sg', 'active', '2024-02-03 09:30:00'),
  (3, 900003, 'Zhang Min', NULL, 'cn', 'deleted', '2024-03-11 12:00:00'),
  (4, 900004, 'John Smith', 'john@example.com', 'us', 'active', '2024-04-22 16:45:00'),
  (5, 900005, 'Lim Wei Jie', 'weijie@example.com', 'sg', 'suspended', '2024-05-30 10:10:10'),
  (6, 900006, 'Anna Müller', 'anna@example.com', 'de', 'deleted', '2024-06-01 00:00:00');

INSERT INTO orders VALUES
  (50001, 1, 320.00, 'CNY', '2026-01-05 10:00:00.000'),
  (50002, 2, 45.90, 'SGD', '2026-01-05 11:20:30.500'),
  (50003, 4, 12.00, 'USD', '2026-01-06 15:00:00.125'),
  (50004, 1, 88.80, 'CNY', '2026-01-07 09:45:00.000');

INSERT INTO tickets (cust_id, subject, priority, opened_at, closed_at) VALUES
  (1, 'Invoice address', 2, '2026-01-05 12:00:00', '2026-01-05 15:30:00'),
  (2, 'Late delivery', 1, '2026-01-06 08:15:00', NULL),
  (4, 'Refund request', 1, '2026-01-07 19:40:00', NULL);

INSERT INTO sync_log VALUES ('2026-01-07 20:00:00', 'seeded');
