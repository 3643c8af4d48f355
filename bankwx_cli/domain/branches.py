"""Branches and ATMs (网点, 地理位置): the CSV import, one-by-one changes, nearest lookups, and
the answers a follower's location gets.

Coordinates are degrees in the system the account's location messages use (GCJ-02 in mainland
China); a branch file in another system (WGS-84, BD-09) shifts every answer by hundreds of
metres. Distances are great-circle (haversine on a sphere of the Earth's mean radius), in
metres. A nearest lookup asks the store's R*Tree for the branches in a bounding box around the
point, keeps those within the box's inscribed circle, sorts them by exact distance (ties by
id), and widens the box while fewer than the limit are found, up to the radius asked.

This area's declarations (``install``): the ``nearest_branch`` action; a message hook for
``location`` messages; an event hook for ``location_select`` that answers when no click rule
matches the event's key (otherwise the rule runs, and its action sees the coordinates); the
settings ``map_url``, ``location_valid``, ``branch_radius_km`` and ``branch_reply``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli import texts
from bankwx_cli.clock import from_iso, iso
from bankwx_cli.domain import account_settings, accounts, audit, keywords
from bankwx_cli.domain.account_settings import TEXT_MAX_BYTES, Setting, choice, int_range
from bankwx_cli.domain.actions import ActionContext, Location
from bankwx_cli.domain.followers import account_for
from bankwx_cli.domain.permissions import load_row, visible_accounts
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.branches import (
    BRANCH_TYPES,
    Branch,
    ImportResult,
    NearBranch,
    ParsedFile,
    RowError,
)
from bankwx_cli.models.replies import Article, NewsReply, Reply, TextReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.extensions import Registry
    from bankwx_cli.storage import Store
    from bankwx_cli.storage.branches import Box
    from bankwx_cli.wechat.callback import Inbound

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG)
HALF_CIRCUMFERENCE_M = math.pi * EARTH_RADIUS_M  # no two points are farther apart
FIRST_RADIUS_M = 2_000.0  # a lookup's first box; widened fourfold while too few are found
WIDEN = 4.0
HEADER = ("id", "name", "type", "lat", "lng", "address", "phone", "hours", "services")
REPLY_ENTRIES = 3  # branches in a text answer
MAX_LIMIT = 100  # branches a nearest lookup of the command line shows
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LIMITS = {"name": 100, "address": 200, "phone": 40, "hours": 100}  # characters
SERVICE_MAX, SERVICES_MAX = 40, 20
DEFAULT_MAP_URL = "https://uri.amap.com/marker?position={lng},{lat}"

# Follower-facing text (Simplified Chinese).
TYPE_WORDS = {"branch": "网点", "atm": "自助银行"}
# The follower-facing texts, overridable per account (text.KEY settings; texts.py).
ASK_LOCATION = texts.DEFAULTS["location_ask"]
BAD_LOCATION = texts.DEFAULTS["location_bad"]
NONE_NEAR = texts.DEFAULTS["branches_none_near"]
NEAREST_TITLE = texts.DEFAULTS["branches_nearest"]


def _said(account: Account, key: str) -> str:
    """A follower-facing text as the account has it."""
    return texts.text(key, account_settings.texts_of(account))


# --- geometry ---------------------------------------------------------------------------------


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """The great-circle distance in metres between two points (degrees), by haversine."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def boxes(lat: float, lng: float, radius_m: float) -> list[Box]:
    """Boxes (min_lat, max_lat, min_lng, max_lng) covering every point within radius_m of the
    point: one box, or two where the circle crosses the 180th meridian; the whole longitude
    range where it holds a pole."""
    pad = 1e-9  # degrees: a point on the circle is never outside its box by rounding
    angle = radius_m / EARTH_RADIUS_M
    if angle >= math.pi:
        return [(-90.0, 90.0, -180.0, 180.0)]
    dlat = math.degrees(angle) + pad
    lat0, lat1 = lat - dlat, lat + dlat
    if lat0 <= -90.0 or lat1 >= 90.0:
        return [(max(lat0, -90.0), min(lat1, 90.0), -180.0, 180.0)]
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return [(lat0, lat1, -180.0, 180.0)]
    dlng = math.degrees(math.asin(ratio)) * (1 + 1e-9) + pad
    lng0, lng1 = lng - dlng, lng + dlng
    if lng1 - lng0 >= 360.0:
        return [(lat0, lat1, -180.0, 180.0)]
    if lng0 < -180.0:
        return [(lat0, lat1, lng0 + 360.0, 180.0), (lat0, lat1, -180.0, lng1)]
    if lng1 > 180.0:
        return [(lat0, lat1, lng0, 180.0), (lat0, lat1, -180.0, lng1 - 360.0)]
    return [(lat0, lat1, lng0, lng1)]


def find_nearest(
    store: Store,
    account: str,
    lat: float,
    lng: float,
    *,
    limit: int,
    radius_m: float,
    type_: str | None = None,
) -> list[NearBranch]:
    """The account's ``limit`` branches nearest the point within ``radius_m``, nearest first
    (ties by id). No permission check: for the receiver and the checked commands."""
    radius_m = min(radius_m, HALF_CIRCUMFERENCE_M)
    reach = min(FIRST_RADIUS_M, radius_m)
    while True:
        found = [
            NearBranch(b, d)
            for b in store.branches.in_boxes(account, boxes(lat, lng, reach), type_)
            if (d := distance_m(lat, lng, b.lat, b.lng)) <= reach
        ]
        # Every branch within `reach` is in `found`: when it holds `limit`, none outside the
        # circle can be nearer than its last.
        if len(found) >= limit or reach >= radius_m:
            found.sort(key=lambda n: (n.distance_m, n.branch.id))
            return found[:limit]
        reach = min(reach * WIDEN, radius_m)


# --- the branch file ----------------------------------------------------------------------


def _number(raw: str, low: float, high: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def check_branch(
    account: str,
    branch_id: str,
    name: str,
    type_: str,
    lat: str | float,
    lng: str | float,
    address: str = "",
    phone: str = "",
    hours: str = "",
    services: Sequence[str] = (),
) -> Branch:
    """A branch from its fields, checked; ValidationError naming the first problem."""
    branch_id, name = branch_id.strip(), name.strip()
    if not ID_RE.fullmatch(branch_id):
        shown = branch_id[:40]
        raise ValidationError(
            f"bad id '{shown}': use 1 to 64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    type_ = type_.strip().lower()
    if type_ not in BRANCH_TYPES:
        raise ValidationError(f"unknown type '{type_[:20]}': use branch or atm")
    y = _number(str(lat).strip(), -90.0, 90.0)
    x = _number(str(lng).strip(), -180.0, 180.0)
    if y is None:
        raise ValidationError(
            f"bad coordinates: lat '{str(lat)[:20]}' is not a number from -90 to 90"
        )
    if x is None:
        raise ValidationError(
            f"bad coordinates: lng '{str(lng)[:20]}' is not a number from -180 to 180"
        )
    texts = {"name": name, "address": address.strip(), "phone": phone.strip(),
             "hours": hours.strip()}  # fmt: skip
    if not name:
        raise ValidationError("the name is empty")
    for field, value in texts.items():
        if len(value) > LIMITS[field]:
            raise ValidationError(f"{field} is {len(value)} characters: at most {LIMITS[field]}")
    listed = tuple(s.strip() for s in services if s.strip())
    if len(listed) > SERVICES_MAX or any(len(s) > SERVICE_MAX for s in listed):
        raise ValidationError(
            f"services: at most {SERVICES_MAX}, each of at most {SERVICE_MAX} characters"
        )
    return Branch(account, branch_id, texts["name"], type_, y, x, texts["address"],
                  texts["phone"], texts["hours"], listed)  # fmt: skip


def _header_problem(names: list[str]) -> str | None:
    given = [n.strip().lower() for n in names]
    if sorted(given) == sorted(HEADER) and len(set(given)) == len(HEADER):
        return None
    missing = [n for n in HEADER if n not in given]
    unknown = [n for n in given if n not in HEADER]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown {', '.join(repr(n[:20]) for n in unknown[:5])}")
    if not parts:
        parts.append("a column is named twice")
    return f"wrong header ({'; '.join(parts)}): the first line must be {','.join(HEADER)}"


def parse_file(data: bytes, account: str) -> ParsedFile:
    """Read a branch file (UTF-8, a BOM allowed): every valid row and every bad line, by its
    number (the header is line 1). Never raises for what the file holds."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, Branch]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    columns: dict[str, int] | None = None
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(line, f"not a CSV row ({exc})"))
            if columns is None:
                return ParsedFile((), tuple(errors), header_ok=False)
            continue
        if any(_undecodable(c) for c in cells):
            errors.append(RowError(line, "not UTF-8 text: save the file as UTF-8"))
            if columns is None:
                return ParsedFile((), tuple(errors), header_ok=False)
            continue
        if columns is None:
            problem = _header_problem(cells)
            if problem is not None:
                return ParsedFile((), (RowError(line, problem),), header_ok=False)
            columns = {n.strip().lower(): i for i, n in enumerate(cells)}
            continue
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) != len(HEADER):
            errors.append(RowError(line, f"{len(cells)} fields where the header has {len(HEADER)}"))
            continue
        value = {name: cells[i] for name, i in columns.items()}
        try:
            branch = check_branch(
                account, value["id"], value["name"], value["type"], value["lat"],
                value["lng"], value["address"], value["phone"], value["hours"],
                value["services"].split(";"),
            )  # fmt: skip
        except ValidationError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        first = seen.get(branch.id)
        if first is not None:
            errors.append(RowError(line, f"duplicate id '{branch.id}' (first on line {first})"))
            continue
        seen[branch.id] = line
        rows.append((line, branch))
    if columns is None:
        return ParsedFile((), (RowError(1, _header_problem([]) or "empty"),), header_ok=False)
    return ParsedFile(tuple(rows), tuple(errors))


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


# --- commands -----------------------------------------------------------------------------


def read_file(path: Path) -> bytes:
    """A branch file's bytes; ValidationError naming why it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"no branch file '{path}': give a CSV file.") from None
    except IsADirectoryError:
        raise ValidationError(f"'{path}' is a directory: give a CSV file.") from None
    except OSError as exc:
        raise ValidationError(f"cannot read the branch file '{path}' ({exc.strerror}).") from None


def import_file(
    app: AppContext,
    name: str | None,
    file: Path,
    *,
    valid_only: bool = False,
    replace: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Import a branch file (``parse_file``) into the account, in one transaction with
    sqlite-utils' bulk insert: every row or none (any bad line imports nothing), or with
    ``valid_only`` exactly the valid rows. Rows whose id the account has are skipped, unless
    ``replace``: then the account's branches become the file's (those not in it are removed).
    A wrong header, or a header not in UTF-8, imports nothing. ``dry_run`` counts and writes
    nothing.

    Raises PermissionDenied (branch.manage), NotFoundError or ValidationError (the account, a
    file that cannot be read).
    """
    account = account_for(app, "branch.manage", name)
    parsed = parse_file(read_file(file), account.name)
    writes = parsed.header_ok and (valid_only or not parsed.errors)
    chosen = [b for _, b in parsed.rows] if writes else []
    existing = app.store.branches.ids(account.name)
    if replace:
        new = chosen
        removed = len(existing - {b.id for b in chosen}) if writes else 0
    else:
        new = [b for b in chosen if b.id not in existing]
        removed = 0
    result = ImportResult(
        account=account.name,
        imported=len(new),
        skipped=len(parsed.rows) - len(new),
        errors=parsed.errors,
        removed=removed,
        dry_run=dry_run,
        ids=tuple(b.id for b in new),
    )
    if dry_run or not writes:
        return result
    with app.store.transaction():
        if replace:
            app.store.branches.delete_except(account.name, [])
        app.store.branches.insert_many(new, iso(app.clock.now()))
        audit.record(app, "branch.import", account.name, {
            "file": file.name, "imported": result.imported, "skipped": result.skipped,
            "bad": len(parsed.errors), "removed": removed, "replace": replace,
            "valid_only": valid_only,
        })  # fmt: skip
    return result


def list_(app: AppContext, name: str | None, type_: str | None = None) -> list[Branch]:
    """The account's branches (of the type), by id. Raises PermissionDenied (branch.read)."""
    account = account_for(app, "branch.read", name)
    return app.store.branches.all(account.name, type_)


def add(app: AppContext, name: str | None, branch: Branch) -> Branch:
    """Add one branch (``branch.account`` is ignored: the account named is used). Raises
    PermissionDenied (branch.manage), ValidationError, ConflictError (the id is taken)."""
    account = account_for(app, "branch.manage", name)
    checked = check_branch(account.name, branch.id, branch.name, branch.type, branch.lat,
                           branch.lng, branch.address, branch.phone, branch.hours,
                           branch.services)  # fmt: skip
    with app.store.transaction():
        if app.store.branches.get(account.name, checked.id) is not None:
            raise ConflictError(
                f"account '{account.name}' has a branch '{checked.id}': remove it first "
                "(bankwx branch remove), or import a file with --replace."
            )
        app.store.branches.insert_many([checked], iso(app.clock.now()))
        audit.record(app, "branch.add", account.name, {"id": checked.id, "type": checked.type})
    return checked


def get(app: AppContext, name: str | None, branch_id: str, permission: str) -> Branch:
    """The branch of this id, checked by the row (role before the lookup, then the row's
    account): the named account's, else the one branch of that id in the store (of those on
    the operator's accounts, when several accounts have one). Raises PermissionDenied,
    NotFoundError, ValidationError (several accounts have the id: name one)."""

    def load() -> Branch | None:
        if name is not None:
            return app.store.branches.get(accounts.get(app, name).name, branch_id)
        found = app.store.branches.find(branch_id)
        if len(found) <= 1:
            return found[0] if found else None
        visible = visible_accounts(app, permission)
        mine = [b for b in found if visible is None or b.account in visible]
        if len(mine) == 1:
            return mine[0]
        if not mine:
            return found[0]  # refused by its account
        raise ValidationError(
            f"accounts {', '.join(b.account for b in mine)} each have a branch '{branch_id}': "
            "choose one with --account."
        )

    def missing() -> NotFoundError:
        return NotFoundError(f"no branch '{branch_id}'. See bankwx branch list.")

    return load_row(app, permission, load, lambda b: b.account, target=f"branch {branch_id}",
                    missing=missing, account=name)  # fmt: skip


def remove(app: AppContext, name: str | None, branch_id: str) -> Branch:
    """Remove one branch. Raises PermissionDenied (branch.manage), NotFoundError."""
    branch = get(app, name, branch_id, "branch.manage")
    with app.store.transaction():
        if not app.store.branches.delete(branch.account, branch.id):
            raise NotFoundError(f"no branch '{branch_id}'. See bankwx branch list.")
        audit.record(app, "branch.remove", branch.account, {"id": branch.id})
    return branch


def nearest(
    app: AppContext,
    name: str | None,
    lat: float,
    lng: float,
    *,
    limit: int = 5,
    type_: str | None = None,
    radius_km: float | None = None,
) -> list[NearBranch]:
    """The account's branches nearest the point, nearest first (ties by id), within
    ``radius_km`` (default: the account's ``branch_radius_km``). Raises PermissionDenied
    (branch.read), ValidationError."""
    account = account_for(app, "branch.read", name)
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValidationError(f"bad coordinates {lat},{lng}: lat -90 to 90, lng -180 to 180.")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit {limit} is invalid: give 1 to {MAX_LIMIT}.")
    if radius_km is not None and not radius_km > 0:
        raise ValidationError(f"radius {radius_km:g} km is invalid: give more than 0.")
    radius = radius_km if radius_km is not None else _radius_km(account)
    return find_nearest(app.store, account.name, lat, lng, limit=limit, radius_m=radius * 1000,
                        type_=type_)  # fmt: skip


# --- what a follower gets -----------------------------------------------------------------


def _radius_km(account: Account) -> int:
    return int(account_settings.value(account, "branch_radius_km"))


def map_link(account: Account, lat: float, lng: float) -> str:
    """The account's map URL for a point ('' when the account has none)."""
    template = str(account_settings.value(account, "map_url") or "")
    return template.replace("{lat}", f"{lat:.6f}").replace("{lng}", f"{lng:.6f}")


def shown_distance(metres: float) -> str:
    if metres < 1000:
        return f"约{max(1, round(metres))}米"
    return f"约{metres / 1000:.1f}公里"


def answer(app: AppContext, account: Account, where: Location, type_: str | None = None) -> Reply:
    """The reply to a follower at ``where``: the nearest branches within the account's radius,
    as text (up to three) or one news article (``branch_reply``)."""
    radius = _radius_km(account)
    limit = 1 if account_settings.value(account, "branch_reply") == "news" else REPLY_ENTRIES
    near = find_nearest(app.store, account.name, where.latitude, where.longitude, limit=limit,
                        radius_m=radius * 1000.0, type_=type_)  # fmt: skip
    if not near:
        return TextReply(_said(account, "branches_none_near").replace("{km}", str(radius)))
    if limit == 1:
        first = near[0]
        b = first.branch
        lines = [f"距离：{shown_distance(first.distance_m)}"]
        lines += [f"地址：{b.address}"] if b.address else []
        lines += [f"营业时间：{b.hours}"] if b.hours else []
        lines += [f"电话：{b.phone}"] if b.phone else []
        title = f"{b.name}（{TYPE_WORDS.get(b.type, b.type)}）"
        return NewsReply(Article(title, "\n".join(lines), map_link(account, b.lat, b.lng)))
    text = _said(account, "branches_nearest")
    for n, found in enumerate(near, start=1):
        b = found.branch
        kind = TYPE_WORDS.get(b.type, b.type)
        parts = [f"{n}. {b.name}（{kind}）{shown_distance(found.distance_m)}"]
        parts += [f"地址：{b.address}"] if b.address else []
        parts += [f"营业时间：{b.hours}"] if b.hours else []
        link = map_link(account, b.lat, b.lng)
        parts += [f"地图：{link}"] if link else []
        longer = text + "\n" + "\n".join(parts)
        if n > 1 and len(longer.encode()) > TEXT_MAX_BYTES:
            break  # WeChat's limit for a text reply: the nearest that fit
        text = longer
    return TextReply(text)


def _valid(where: Location | None) -> bool:
    return (
        where is not None
        and math.isfinite(where.latitude)
        and math.isfinite(where.longitude)
        and -90 <= where.latitude <= 90
        and -180 <= where.longitude <= 180
    )


def _remembered(ctx: ActionContext) -> Location | None:
    """The follower's last LOCATION event, when recent (``location_valid`` seconds)."""
    state = ctx.app.store.follower_state.get(ctx.account.name, ctx.openid)
    if state is None or state.latitude is None or state.longitude is None:
        return None
    if not state.location_at:
        return None
    valid = int(account_settings.value(ctx.account, "location_valid"))
    age = (ctx.app.clock.now() - from_iso(state.location_at)).total_seconds()
    return Location(state.latitude, state.longitude) if age <= valid else None


def nearest_branch(ctx: ActionContext) -> Reply:
    """The action: the nearest branches to the message's coordinates, else to the follower's
    recent LOCATION, else a request for the follower's location."""
    type_ = ctx.arg or None
    where = ctx.location
    event = ctx.inbound.event if ctx.inbound is not None else ""
    if where is None and (ctx.msg_type == "location" or event == "location_select"):
        # it should carry coordinates, and they do not read
        return TextReply(_said(ctx.account, "location_bad"))
    if where is None:
        where = _remembered(ctx)
    if where is None:
        return TextReply(_said(ctx.account, "location_ask"))
    if not _valid(where):
        return TextReply(_said(ctx.account, "location_bad"))
    return answer(ctx.app, ctx.account, where, type_)


def _context(app: AppContext, runtime: Runtime, inbound: Inbound) -> ActionContext:
    return ActionContext(app, runtime.account, inbound.openid, inbound.event_key, None, inbound)


def on_location(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """Message hook: a location message gets the nearest branches (an account without
    branches leaves it to routing: the default reply)."""
    from bankwx_cli.domain.routing import Decision

    if not app.store.branches.any(runtime.account.name):
        return None
    reply = nearest_branch(_context(app, runtime, inbound))
    return Decision(reply, route="branches:location")


def on_location_select(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """Event hook: a ``location_select`` whose key no click rule matches gets the nearest
    branches; with a rule, routing goes on and the rule runs (event hooks run before rules,
    and see the account's rules in ``runtime``), as it does for an account without branches."""
    from bankwx_cli.domain.routing import Decision

    if keywords.first_match(runtime.rules, inbound.event_key, click=True) is not None:
        return None
    if not app.store.branches.any(runtime.account.name):
        return None
    reply = nearest_branch(_context(app, runtime, inbound))
    return Decision(reply, route="branches:location_select")


def _type_arg(app: AppContext, account: Account, arg: str | None) -> None:
    if arg and arg not in BRANCH_TYPES:
        raise ValidationError(f"nearest_branch takes --arg branch or atm, not '{arg}'.")


def _map_url(value: str) -> str:
    value = value.strip()
    if not (re.match(r"https?://[^\s/]+", value) and "{lat}" in value and "{lng}" in value):
        raise ValueError("not an http(s) URL with {lat} and {lng}")
    if len(value) > 512 or any(c.isspace() for c in value):
        raise ValueError("spaces, or longer than 512 characters")
    return value


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py)."""
    registry.action(
        "nearest_branch",
        "Reply with the branches nearest the follower (their location, else ask for it).",
        arg="type: branch or atm (default both)",
        default="",
        validate=_type_arg,
    )(nearest_branch)
    registry.on_message("location", on_location)
    registry.on_event("location_select", on_location_select)
    for setting in (
        Setting("map_url", "str", DEFAULT_MAP_URL, "Map link of a branch in location answers; "
                "{lat} and {lng} are replaced by its coordinates (in the account's system).",
                "branches",
                "an http(s) URL with {lat} and {lng}", _map_url),
        Setting("location_valid", "int", 600, "Seconds a follower's reported location (LOCATION "
                "event) answers nearest_branch.", "branches",
                "a whole number of seconds from 10 to 86400", int_range(10, 86_400)),
        Setting("branch_radius_km", "int", 50, "Kilometres within which location answers look "
                "for branches.", "branches", "a whole number of kilometres from 1 to 1000",
                int_range(1, 1000)),
        Setting("branch_reply", "str", "text", "Location answers as text (up to three "
                "branches) or news (the nearest, one article).", "branches",
                "one of text, news", choice(("text", "news"))),
    ):  # fmt: skip
        registry.setting(setting)
