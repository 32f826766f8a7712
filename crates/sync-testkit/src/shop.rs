//! The demo shop database, generated as SQL from a seed.
//!
//! Five tables chosen to cover the column types a sync has to map: integers
//! of every width and signedness, DECIMAL, FLOAT/DOUBLE, BIT, YEAR, DATE,
//! TIME, DATETIME and TIMESTAMP with fractional seconds, CHAR/VARCHAR/TEXT
//! with multi-byte text, BINARY/VARBINARY/BLOB, ENUM, SET, JSON, NULLs,
//! composite primary keys and one table without any key (`event_log`).

use crate::rng::Rng;
use std::fmt::Write as _;

/// How much data to generate.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Rows in `customers`.
    pub customers: u32,
    /// Rows in `products`.
    pub products: u32,
    /// Rows in `orders`; each order has one to four `order_items`.
    pub orders: u32,
    /// Rows in `event_log` (the table without a key).
    pub events: u32,
}

impl Scale {
    /// A few thousand rows in all: what `scripts/demo` loads.
    pub const DEMO: Self = Self {
        customers: 500,
        products: 200,
        orders: 1_000,
        events: 300,
    };
}

/// One round of a writer's changes to the shop database `db`, as SQL
/// statements in one text: updates of many rows, an insert of customer
/// `new_id` (unique per round), deletes, and a multi-statement transaction
/// that also moves a primary key. Which rows it touches comes from `rng`.
/// The kill tests and `sync-chaos` run it while the task is interrupted.
pub fn changes_sql(db: &str, rng: &mut Rng, new_id: u32) -> String {
    let m = rng.range(0, 12);
    format!(
        "USE `{db}`;
         UPDATE customers SET credit = credit + 1, notes = CONCAT(IFNULL(notes, ''), '+') WHERE id % 13 = {m};
         INSERT INTO customers (id, email, name, country, signup_at) VALUES ({new_id}, 'w{new_id}@example.com', 'W', 'PL', NOW(3));
         DELETE FROM order_items WHERE order_id % 17 = {m} LIMIT 3;
         START TRANSACTION;
         UPDATE orders SET total = total + 1 WHERE id % 19 = {m};
         UPDATE products SET id = id + 1000000 WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM products) x);
         COMMIT;"
    )
}

/// Rows per multi-row INSERT statement.
const INSERT_BATCH: usize = 200;

/// The DDL of the shop schema in database `db` (created if missing).
pub fn schema_sql(db: &str) -> String {
    format!(
        "SET NAMES utf8mb4;
CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4;
USE `{db}`;
CREATE TABLE IF NOT EXISTS customers (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  email VARCHAR(120) NOT NULL UNIQUE,
  name VARCHAR(80) NOT NULL,
  country CHAR(2) NOT NULL,
  birth_date DATE NULL,
  birth_year YEAR NULL,
  vip TINYINT(1) NOT NULL DEFAULT 0,
  credit DECIMAL(12,2) NOT NULL DEFAULT 0,
  score DOUBLE NULL,
  rating FLOAT NULL,
  flags BIT(8) NOT NULL DEFAULT b'0',
  status ENUM('active','blocked','deleted') NOT NULL DEFAULT 'active',
  tags SET('new','vip','churn','b2b') NOT NULL DEFAULT '',
  signup_at DATETIME(3) NOT NULL,
  last_login TIMESTAMP(6) NULL DEFAULT NULL,
  preferred_time TIME(2) NULL,
  notes TEXT NULL,
  avatar BLOB NULL
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS products (
  id BIGINT NOT NULL PRIMARY KEY,
  sku CHAR(12) NOT NULL,
  title VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight_g MEDIUMINT NOT NULL,
  stock SMALLINT UNSIGNED NOT NULL,
  temperature TINYINT NULL,
  active BOOLEAN NOT NULL DEFAULT TRUE,
  ean BINARY(8) NOT NULL,
  thumb VARBINARY(64) NULL,
  attrs JSON NULL,
  created DATETIME NOT NULL
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS orders (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  placed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  total DECIMAL(14,4) NOT NULL,
  currency ENUM('CNY','USD','EUR') NOT NULL,
  delivery_window TIME NULL,
  note VARCHAR(255) NULL,
  KEY by_customer (customer_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  line SMALLINT NOT NULL,
  product_id BIGINT NOT NULL,
  qty INT NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  discount FLOAT NULL,
  PRIMARY KEY (order_id, line)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS event_log (
  at DATETIME(6) NOT NULL,
  level TINYINT NOT NULL,
  source VARCHAR(32) NOT NULL,
  message TEXT NOT NULL
) ENGINE=InnoDB;
"
    )
}

/// The whole shop, schema and rows, as one SQL script.
pub fn shop_sql(db: &str, scale: Scale, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = schema_sql(db);
    push_inserts(&mut out, "customers", scale.customers, |i, s| {
        customer(&mut rng, i, s)
    });
    let mut rng = Rng::new(seed ^ 0x70);
    push_inserts(&mut out, "products", scale.products, |i, s| {
        product(&mut rng, i, s)
    });
    let mut rng = Rng::new(seed ^ 0x0d);
    let mut items = Vec::new();
    push_inserts(&mut out, "orders", scale.orders, |i, s| {
        order(&mut rng, i, scale, s, &mut items);
    });
    let item_count = items.len() as u32;
    push_inserts(&mut out, "order_items", item_count, |i, s| {
        s.push_str(&items[i as usize])
    });
    let mut rng = Rng::new(seed ^ 0xe7);
    push_inserts(&mut out, "event_log", scale.events, |i, s| {
        event(&mut rng, i, s)
    });
    out
}

fn push_inserts(out: &mut String, table: &str, rows: u32, mut row: impl FnMut(u32, &mut String)) {
    for start in (0..rows).step_by(INSERT_BATCH) {
        let _ = write!(out, "INSERT INTO {table} VALUES ");
        let end = (start + INSERT_BATCH as u32).min(rows);
        for i in start..end {
            if i > start {
                out.push(',');
            }
            out.push('(');
            row(i, out);
            out.push(')');
        }
        out.push_str(";\n");
    }
}

const FIRST: &[&str] = &[
    "Li", "Wang", "Zhang", "Anna", "José", "Zoë", "Олег", "Émile", "王芳", "Ngozi",
];
const LAST: &[&str] = &[
    "Chen", "Smith", "O'Brien", "Müller", "Dubois", "山田", "Kowalski", "Nguyen",
];
const COUNTRIES: &[&str] = &["CN", "US", "DE", "FR", "JP", "BR", "NG", "PL"];
const STATUSES: &[&str] = &["active", "active", "active", "blocked", "deleted"];
const TAGS: &[&str] = &[
    "",
    "new",
    "vip",
    "new,b2b",
    "vip,churn",
    "new,vip,churn,b2b",
];
const WORDS: &[&str] = &[
    "steel",
    "kettle",
    "blue",
    "茶",
    "lamp",
    "wool",
    "🚲 bike",
    "desk",
    "oak",
    "mini",
];

fn customer(rng: &mut Rng, i: u32, s: &mut String) {
    let id = i + 1;
    let name = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
    let _ = write!(
        s,
        "{id},'user{id}@example.com',{},'{}',",
        quote(&name),
        rng.pick(COUNTRIES)
    );
    if rng.chance(1, 10) {
        s.push_str("NULL,NULL,");
    } else {
        let (y, m, d) = (rng.range(1940, 2008), rng.range(1, 12), rng.range(1, 28));
        let _ = write!(s, "'{y:04}-{m:02}-{d:02}',{y},");
    }
    let _ = write!(
        s,
        "{},{}.{:02},",
        rng.range(0, 1),
        rng.range(-500, 99_999),
        rng.range(0, 99)
    );
    push_nullable(s, rng, |s, rng| {
        let _ = write!(s, "{:e}", rng.range(-1_000_000, 1_000_000) as f64 / 7.0);
    });
    push_nullable(s, rng, |s, rng| {
        let _ = write!(s, "{}", rng.range(0, 50) as f32 / 10.0);
    });
    let _ = write!(
        s,
        "b'{:08b}','{}','{}',",
        rng.range(0, 255),
        rng.pick(STATUSES),
        rng.pick(TAGS)
    );
    let _ = write!(
        s,
        "'{}.{:03}',",
        datetime(rng, 2015, 2025),
        rng.range(0, 999)
    );
    if rng.chance(1, 5) {
        s.push_str("NULL,");
    } else {
        let _ = write!(
            s,
            "'{}.{:06}',",
            datetime(rng, 2020, 2025),
            rng.range(0, 999_999)
        );
    }
    push_nullable(s, rng, |s, rng| {
        let _ = write!(
            s,
            "'{:02}:{:02}:00.{:02}'",
            rng.range(0, 23),
            rng.range(0, 59),
            rng.range(0, 99)
        );
    });
    push_nullable(s, rng, |s, rng| {
        let words: Vec<&str> = (0..rng.range(0, 12)).map(|_| *rng.pick(WORDS)).collect();
        s.push_str(&quote(&words.join(" ")));
    });
    if rng.chance(1, 3) {
        s.push_str("NULL");
    } else {
        let len = rng.range(0, 48) as usize;
        s.push_str(&hex_literal((0..len).map(|_| rng.next_u64() as u8)));
    }
}

fn product(rng: &mut Rng, i: u32, s: &mut String) {
    let id = 1_000_000_000_000i64 + i64::from(i) * 7;
    let title = format!("{} {} {}", rng.pick(WORDS), rng.pick(WORDS), i);
    let _ = write!(
        s,
        "{id},'SKU{:09}',{},{}.{:02},{},{},",
        i,
        quote(&title),
        rng.range(0, 99_999),
        rng.range(0, 99),
        rng.range(-8_388_608, 8_388_607),
        rng.range(0, 65_535)
    );
    push_nullable(s, rng, |s, rng| {
        let _ = write!(s, "{}", rng.range(-128, 127));
    });
    let _ = write!(s, "{},", rng.range(0, 1));
    s.push_str(&hex_literal((0..8).map(|_| rng.next_u64() as u8)));
    s.push(',');
    push_nullable(s, rng, |s, rng| {
        let len = rng.range(0, 64) as usize;
        s.push_str(&hex_literal((0..len).map(|_| rng.next_u64() as u8)));
    });
    push_nullable(s, rng, |s, rng| {
        let json = format!(
            r#"{{"color":"{}","dims":[{},{},{}],"fragile":{},"origin":null}}"#,
            rng.pick(WORDS),
            rng.range(1, 100),
            rng.range(1, 100),
            rng.range(1, 100),
            rng.chance(1, 2)
        );
        s.push_str(&quote(&json));
    });
    let _ = write!(s, "'{}'", datetime(rng, 2010, 2025));
}

fn order(rng: &mut Rng, i: u32, scale: Scale, s: &mut String, items: &mut Vec<String>) {
    let id = u64::from(i) + 1;
    let customer = rng.range(1, i64::from(scale.customers.max(1)));
    let _ = write!(
        s,
        "{id},{customer},'{}.{:03}',{}.{:04},'{}',",
        datetime(rng, 2021, 2025),
        rng.range(0, 999),
        rng.range(1, 9_999_999),
        rng.range(0, 9_999),
        rng.pick(&["CNY", "USD", "EUR"])
    );
    push_nullable(s, rng, |s, rng| {
        let _ = write!(
            s,
            "'{:03}:{:02}:{:02}'",
            rng.range(-838, 838),
            rng.range(0, 59),
            rng.range(0, 59)
        );
    });
    // The last column: no trailing comma, so not through `push_nullable`.
    if rng.chance(1, 6) {
        s.push_str("NULL");
    } else {
        s.push_str(&quote(&format!("leave at {}", rng.pick(WORDS))));
    }
    for line in 1..=rng.range(1, 4) {
        let product = 1_000_000_000_000i64 + rng.range(0, i64::from(scale.products.max(1)) - 1) * 7;
        let discount = if rng.chance(1, 2) {
            "NULL".to_owned()
        } else {
            format!("{}", rng.range(0, 30) as f32 / 100.0)
        };
        items.push(format!(
            "{id},{line},{product},{},{}.{:02},{discount}",
            rng.range(1, 20),
            rng.range(0, 9_999),
            rng.range(0, 99)
        ));
    }
}

fn event(rng: &mut Rng, _i: u32, s: &mut String) {
    let _ = write!(
        s,
        "'{}.{:06}',{},'{}',{}",
        datetime(rng, 2024, 2025),
        rng.range(0, 999_999),
        rng.range(-3, 7),
        rng.pick(&["web", "app", "batch", "cron"]),
        quote(&format!("{} {}", rng.pick(WORDS), rng.pick(WORDS)))
    );
}

fn push_nullable(s: &mut String, rng: &mut Rng, value: impl FnOnce(&mut String, &mut Rng)) {
    if rng.chance(1, 6) {
        s.push_str("NULL");
    } else {
        value(s, rng);
    }
    s.push(',');
}

fn datetime(rng: &mut Rng, from_year: i64, to_year: i64) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        rng.range(from_year, to_year),
        rng.range(1, 12),
        rng.range(1, 28),
        rng.range(0, 23),
        rng.range(0, 59),
        rng.range(0, 59)
    )
}

/// A single-quoted SQL string literal with `'` and `\` escaped.
pub fn quote(text: &str) -> String {
    let mut q = String::with_capacity(text.len() + 2);
    q.push('\'');
    for c in text.chars() {
        match c {
            '\'' => q.push_str("''"),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

fn hex_literal(bytes: impl Iterator<Item = u8>) -> String {
    let mut s = String::from("X'");
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let scale = Scale {
            customers: 10,
            products: 5,
            orders: 7,
            events: 3,
        };
        let a = shop_sql("shop", scale, 42);
        assert_eq!(a, shop_sql("shop", scale, 42));
        assert_ne!(a, shop_sql("shop", scale, 43));
        assert_eq!(a.matches("INSERT INTO customers").count(), 1);
        assert!(a.contains("INSERT INTO order_items"));
        assert!(a.contains("'user10@example.com'"));
        assert!(!a.contains("'user11@example.com'"));
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r"O'Brien \ x"), r"'O''Brien \\ x'");
    }
}
