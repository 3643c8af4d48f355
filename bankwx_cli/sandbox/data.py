"""The sandbox's bank: customers, cards, accounts, transactions, card bills, rates and
products in its own SQLite file, seeded from a number (the same seed, the same bank)."""

from __future__ import annotations

import random
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
  number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),
  type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),
  type TEXT NOT NULL, currency TEXT NOT NULL, balance_fen INTEGER NOT NULL,
  available_fen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),
  account_number TEXT NOT NULL, at TEXT NOT NULL, description TEXT NOT NULL,
  amount_fen INTEGER NOT NULL, currency TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS card_bills (
  card_number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),
  period TEXT NOT NULL, statement_date TEXT NOT NULL, due_date TEXT NOT NULL,
  amount_fen INTEGER NOT NULL, min_payment_fen INTEGER NOT NULL, currency TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rates (
  kind TEXT NOT NULL, position INTEGER NOT NULL, term TEXT NOT NULL, name TEXT NOT NULL,
  rate TEXT NOT NULL, PRIMARY KEY (kind, position));
CREATE TABLE IF NOT EXISTS fx_rates (
  currency TEXT PRIMARY KEY, position INTEGER NOT NULL, name TEXT NOT NULL,
  unit INTEGER NOT NULL, buy TEXT NOT NULL, sell TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, rate TEXT,
  min_amount_fen INTEGER NOT NULL, risk TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
TABLES = ("card_bills", "transactions", "accounts", "cards", "customers", "rates", "fx_rates",
          "products", "meta")  # fmt: skip

CUSTOMERS = 8
TRANSACTIONS = 15
# Seeded data is dated from here, so that a seed gives the same bank on any day.
EPOCH = datetime(2026, 12, 1, tzinfo=UTC)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛")
DESCRIPTIONS = (
    ("工资", 1_500_000, 2_500_000),
    ("超市购物", -50_000, -1_000),
    ("餐饮消费", -30_000, -1_500),
    ("水电燃气", -40_000, -5_000),
    ("转账", -500_000, -10_000),
    ("理财赎回", 100_000, 1_000_000),
    ("手机充值", -20_000, -5_000),
)
DEPOSIT_RATES = (
    ("demand", "活期", "0.10"),
    ("3m", "三个月定期", "0.65"),
    ("6m", "六个月定期", "0.85"),
    ("1y", "一年定期", "0.95"),
    ("2y", "二年定期", "1.05"),
    ("3y", "三年定期", "1.25"),
    ("5y", "五年定期", "1.30"),
)
LOAN_RATES = (
    ("1y", "一年期贷款市场报价利率", "3.00"),
    ("5y", "五年期以上贷款市场报价利率", "3.50"),
    ("housing", "首套住房商业贷款", "3.05"),
)
FX_RATES = (
    ("USD", "美元", 100, "718.20", "721.22"),
    ("EUR", "欧元", 100, "757.31", "762.89"),
    ("HKD", "港币", 100, "92.08", "92.45"),
    ("JPY", "日元", 100, "4.6812", "4.7188"),
    ("GBP", "英镑", 100, "906.17", "912.84"),
)
PRODUCTS = (
    ("P001", "稳享90天", "wealth", "2.35", 100_000, "R1", "期限90天，低风险"),
    ("P002", "月月盈", "wealth", "2.10", 10_000, "R2", "按月开放申赎"),
    ("P003", "大额存单三年期", "deposit", "1.55", 20_000_000, "R1", "起存20万元"),
    ("P004", "安心保", "insurance", None, 50_000, "R1", "意外保障"),
)


def luhn_digit(body: str) -> str:
    """The check digit that makes body + digit pass the Luhn check (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _card(rng: random.Random, prefix: str) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix)))
    return body + luhn_digit(body)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Bank:
    """The sandbox's SQLite file (``path``; a temporary one when the caller gives that).

    One connection guarded by a lock: the app's handlers run on one event loop, and a test
    may read through it from another thread."""

    def __init__(self, path: Path, seed: int) -> None:
        self.path = path
        self.seed = seed
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.executescript(SCHEMA)
        if self.scalar("SELECT count(*) FROM customers") == 0:
            self.seed_data()

    def close(self) -> None:
        self.conn.close()

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[sqlite3.Row]:
        with self._lock:
            return list(self.conn.execute(sql, params or {}))

    def one(self, sql: str, params: dict[str, Any] | None = None) -> sqlite3.Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def reset(self) -> None:
        """Forget everything and seed again (same seed: same bank)."""
        with self._lock:
            self.conn.execute("BEGIN")
            for table in TABLES:
                self.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - names from TABLES
            self.conn.execute("COMMIT")
        self.seed_data()

    def seed_data(self) -> None:
        rng = random.Random(self.seed)
        rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        for n in range(1, CUSTOMERS + 1):
            cid = f"C{n:06d}"
            name = rng.choice(SURNAMES) + "".join(
                rng.choice(GIVEN) for _ in range(rng.randint(1, 2))
            )
            phone = "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))
            rows["customers"].append((cid, name, phone))
            debit = _card(rng, "622202")
            rows["cards"].append((debit, cid, "debit"))
            balance = rng.randint(0, 50_000_000)
            rows["accounts"].append(
                (debit, cid, "savings", "CNY", balance, balance - rng.choice((0, 0, 10_000)))
            )
            if n % 2 == 1:
                deposit = "6217" + "".join(rng.choice("0123456789") for _ in range(15))
                amount = rng.randint(1_000_000, 100_000_000)
                rows["accounts"].append((deposit, cid, "time_deposit", "CNY", amount, 0))
            if n % 2 == 1 or n == 2:
                credit = _card(rng, "625802")
                rows["cards"].append((credit, cid, "credit"))
                bill = rng.randint(10_000, 2_000_000)
                rows["card_bills"].append(
                    (credit, cid, "2026-11", "2026-11-25", "2026-12-15", bill,
                     max(bill // 10, 1_000), "CNY")
                )  # fmt: skip
            moment = EPOCH
            for t in range(1, TRANSACTIONS + 1):
                moment -= timedelta(minutes=rng.randint(30, 3 * 24 * 60))
                description, low, high = rng.choice(DESCRIPTIONS)
                rows["transactions"].append(
                    (f"T{n:04d}{t:04d}", cid, debit, iso(moment), description,
                     rng.randint(low, high), "CNY")
                )  # fmt: skip
        for position, (term, name, rate) in enumerate(DEPOSIT_RATES):
            rows["rates"].append(("deposit", position, term, name, rate))
        for position, (term, name, rate) in enumerate(LOAN_RATES):
            rows["rates"].append(("loan", position, term, name, rate))
        for position, (cur, name, unit, buy, sell) in enumerate(FX_RATES):
            rows["fx_rates"].append((cur, position, name, unit, buy, sell))
        rows["products"].extend(PRODUCTS)
        rows["meta"].append(("rates_as_of", iso(EPOCH)))
        with self._lock:
            self.conn.execute("BEGIN")
            for table in reversed(TABLES):
                for row in rows[table]:
                    marks = ", ".join("?" for _ in row)
                    self.conn.execute(f"INSERT INTO {table} VALUES ({marks})", row)  # noqa: S608
            self.conn.execute("COMMIT")

    # --- what the endpoints read -------------------------------------------------------------

    def customers(self) -> list[dict[str, Any]]:
        """Every customer in full (card and account numbers too): for tests, never on /v1/."""
        out = []
        for c in self.all("SELECT id, name, phone FROM customers ORDER BY id"):
            cards = self.all(
                "SELECT number, type FROM cards WHERE customer_id = :c ORDER BY type DESC, number",
                {"c": c["id"]},
            )
            accounts = self.all(
                "SELECT number, type, balance_fen FROM accounts WHERE customer_id = :c "
                "ORDER BY type, number",
                {"c": c["id"]},
            )
            out.append(
                {
                    "id": c["id"],
                    "name": c["name"],
                    "phone": c["phone"],
                    "cards": [{"number": r["number"], "type": r["type"]} for r in cards],
                    "accounts": [
                        {"number": r["number"], "type": r["type"], "balance_fen": r["balance_fen"]}
                        for r in accounts
                    ],
                }
            )
        return out

    def customer(self, cid: str) -> sqlite3.Row | None:
        return self.one("SELECT id, name, phone FROM customers WHERE id = :c", {"c": cid})

    def card(self, number: str) -> sqlite3.Row | None:
        return self.one(
            "SELECT c.number, c.customer_id, p.phone FROM cards c "
            "JOIN customers p ON p.id = c.customer_id WHERE c.number = :n",
            {"n": number},
        )
